// Browser test: a page reload mid-game resumes the same game, and lost
// connections are survived within the grace, and explained after it.
//
// 1. Ada reloads the page mid-game: the same game comes back (same room,
//    her score kept) and play goes on.
// 2. Ada's connection is cut for a moment: a "reconnecting" banner shows,
//    then the client gets back in by itself and the banner goes away.
// 3. Bob's connection is cut for longer than the grace: Ada wins with
//    "Bob disconnected…", and Bob, once back online, is told clearly that
//    the game ended while he was away.
//
// usage: node test_reload.mjs OVERCOOKIED_BINARY WEB_DIR SCREENSHOT_DIR

import test from 'node:test';
import assert from 'node:assert/strict';
import * as t from './lib.mjs';

const { binary, webDir, shotDir } = t.args();
const NAME = 'reload';
const GRACE_S = 4;

test('a reload mid-game resumes the same game; lost connections come back or are explained', { timeout: 100_000 }, async () => {
  const server = await t.startServer(binary, webDir, [
    '--game-length', '25', '--reconnect-grace', String(GRACE_S),
    '--golden-min', '30', '--golden-max', '30', // no golden cookie in the way
  ]);
  const browser = await t.launchBrowser();
  try {
    const ada = await t.newPlayer(browser, server.base, 'Ada', t.SIZES[0], { controlSockets: true });
    const bob = await t.newPlayer(browser, server.base, 'Bob', t.SIZES[1], { controlSockets: true });
    await t.login(ada, 'Ada');
    await t.login(bob, 'Bob');
    await t.play(ada);
    await t.play(bob);
    await Promise.all([t.waitGame(ada), t.waitGame(bob)]);
    await t.waitRunning(ada);
    const room = await ada.page.getAttribute('#screen-game', 'data-room-id');
    assert.ok(room, 'the game screen knows its room');

    await t.clickMany(ada, 6, 60, 'key');
    await t.clickMany(bob, 2, 60);
    await t.until(async () => (await t.score(ada.page, 'me')) >= 6, 3000, 'Ada to score 6');
    const before = await t.score(ada.page, 'me');

    // 1. Reload.
    await ada.page.reload();
    await t.waitGame(ada);
    assert.equal(await ada.page.getAttribute('#screen-game', 'data-room-id'), room, 'the same game');
    assert.equal(await t.text(ada.page, '#me-name'), 'Ada');
    assert.equal(await t.text(ada.page, '#opp-name'), 'Bob');
    await t.until(async () => (await t.score(ada.page, 'me')) === before, 2000, `Ada's score (${before}) to be kept`);
    assert.equal(await ada.page.locator('#countdown').isVisible(), false, 'no second countdown');
    assert.match(await t.text(ada.page, '#toasts'), /Welcome back/);
    await t.clickMany(ada, 3, 60, 'key');
    await t.until(async () => (await t.score(ada.page, 'me')) === before + 3, 3000, 'clicks to count after the reload');
    await t.until(async () => (await t.score(bob.page, 'opp')) === before + 3, 3000, 'Bob to see them');
    await t.screenshot(ada, shotDir, NAME, 'game', false);
    await t.screenshot(bob, shotDir, NAME, 'game', false);

    // 2. A short outage: the banner, then back in the same game by itself.
    await t.cutConnection(ada);
    const banner = ada.page.locator('#reconnect-banner');
    await banner.waitFor({ state: 'visible', timeout: 2000 });
    assert.match(await t.text(ada.page, '#reconnect-text'), /Reconnecting/);
    await t.sleep(1200);
    await t.screenshot(ada, shotDir, NAME, 'reconnecting', false);
    const mid = await t.score(ada.page, 'me');
    await t.restoreConnection(ada);
    await banner.waitFor({ state: 'hidden', timeout: 6000 });
    assert.equal(await ada.page.getAttribute('#screen-game', 'data-room-id'), room, 'still the same game');
    await t.clickMany(ada, 2, 60, 'key');
    await t.until(async () => (await t.score(ada.page, 'me')) === mid + 2, 3000, 'clicks to count after reconnecting');

    // 3. A long outage for Bob: past the grace, Ada wins.
    await t.cutConnection(bob);
    await bob.page.locator('#reconnect-banner').waitFor({ state: 'visible', timeout: 2000 });
    await t.sleep(1500);
    await t.screenshot(bob, shotDir, NAME, 'reconnecting', false);
    const a = await t.overScreen(ada.page);
    assert.equal(a.result, 'win');
    assert.equal(a.reason, 'Bob disconnected and did not come back in time.');
    await t.screenshot(ada, shotDir, NAME, 'over');
    // Bob comes back online: a clear message, with the result from history.
    await t.restoreConnection(bob);
    const b = await t.overScreen(bob.page);
    assert.equal(b.result, 'loss');
    assert.equal(b.reason, 'You were disconnected for too long.');
    assert.match(await t.text(bob.page, '#over-note'), /ended while you were disconnected/);
    assert.equal(b.me, a.opp);
    assert.equal(b.opp, a.me);
    await t.screenshot(bob, shotDir, NAME, 'over');

    for (const p of [ada, bob]) await p.page.click('#to-lobby');
    await ada.page.locator('#history-body .game-row').first().waitFor();
    assert.match(await t.text(ada.page, '#history-body .game-row'), /Opponent disconnected/);
    await bob.page.locator('#history-body .game-row').first().waitFor();
    assert.match(await t.text(bob.page, '#history-body .game-row'), /You disconnected/);
    for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'lobby');

    for (const p of [ada, bob]) {
      assert.deepEqual(t.unexpectedProblems(p), [], `${p.label}: no console errors`);
      assert.deepEqual(t.foreignRequests(p, server.base).filter((u) => !t.BLOCKED_SOCKET.test(u)), [],
        `${p.label}: nothing loaded from elsewhere`);
    }
  } finally {
    await browser.close();
    const exit = await server.stop();
    assert.equal(exit.code, 0, `the server exits cleanly: ${server.log()}`);
  }
});
