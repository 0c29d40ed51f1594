// Browser test: two players in real chromium play a full game.
//
// Two browser contexts log in (one desktop with mouse and keyboard, one phone
// with touch), queue, get matched, see the countdown, click at different
// rates, watch the timer and both scores move, reach the game-over screen with
// a consistent winner, and then find the game in the lobby's leaderboard and
// history.
//
// usage: node test_game.mjs OVERCOOKIED_BINARY WEB_DIR SCREENSHOT_DIR

import test from 'node:test';
import assert from 'node:assert/strict';
import * as t from './lib.mjs';

const { binary, webDir, shotDir } = t.args();
const NAME = 'game';

test('two players: match, countdown, clicks, game over, then leaderboard and history', { timeout: 90_000 }, async () => {
  // A 4 s countdown: the checks and screenshots below must see it, and on a
  // busy machine they take longer than the default 1 s. A 15 s game: the
  // scores are announced at 10 s left and from 5 s left.
  const server = await t.startServer(binary, webDir,
    ['--countdown', '4', '--game-length', '15']);
  const browser = await t.launchBrowser();
  try {
    const ada = await t.newPlayer(browser, server.base, 'Ada', t.SIZES[0]);
    const bob = await t.newPlayer(browser, server.base, 'Bob', t.SIZES[1]);

    // Login, and a lobby with nothing played yet.
    for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'login');
    await t.login(ada, 'Ada');
    await t.login(bob, 'Bob');
    await ada.page.locator('#board-body .empty').waitFor();
    assert.match(await t.text(ada.page, '#board-body'), /No scores yet/);
    await ada.page.locator('#history-body .empty').waitFor();
    assert.match(await t.text(ada.page, '#history-body'), /No bakes yet/);
    assert.equal(await t.text(ada.page, '#stat-played'), '0');
    await bob.page.locator('#history-body .empty').waitFor();
    for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'lobby-empty');

    // Matchmaking: Ada waits, then Bob joins and both are matched.
    await t.play(ada);
    await ada.page.locator('#queue-status', { hasText: 'Waiting' }).waitFor();
    await t.screenshot(ada, shotDir, NAME, 'queue');
    await t.play(bob);
    await Promise.all([t.waitGame(ada), t.waitGame(bob)]);
    await bob.page.locator('#queue-title').isHidden();

    // The full game length shows until the countdown ends.
    const timer0 = await t.text(ada.page, '#timer');
    assert.equal(timer0, '0:15');
    // Names on both sides, and the countdown overlay.
    assert.equal(await t.text(ada.page, '#me-name'), 'Ada');
    assert.equal(await t.text(ada.page, '#opp-name'), 'Bob');
    assert.equal(await t.text(bob.page, '#me-name'), 'Bob');
    assert.equal(await t.text(bob.page, '#opp-name'), 'Ada');
    assert.equal(await ada.page.locator('#countdown').isVisible(), true, 'the countdown shows after GAME_START');
    assert.match(await t.text(ada.page, '#countdown-num'), /^[1-5]$/);
    assert.match(await t.text(ada.page, '#countdown'), /Get ready to bake against Bob/);
    await t.screenshot(ada, shotDir, NAME, 'countdown');
    await t.screenshot(bob, shotDir, NAME, 'countdown', false);
    const roomA = await ada.page.getAttribute('#screen-game', 'data-room-id');
    // Keep every polite announcement Ada's screen reader would hear, so the
    // check below does not depend on polling at the right moment.
    await ada.page.evaluate(() => {
      const el = document.getElementById('sr-live');
      window.ocHeard = [];
      new MutationObserver(() => { if (el.textContent) window.ocHeard.push(el.textContent); })
        .observe(el, { childList: true, characterData: true, subtree: true });
    });
    assert.equal(await bob.page.getAttribute('#screen-game', 'data-room-id'), roomA, 'same room');

    // Click at different rates until the game is over: Ada with the
    // keyboard (about 12/s), Bob by touch (about 4/s).
    let stop = false;
    const clicker = async (p, how, gap) => {
      while (!stop && (await p.page.locator('#screen-game').isVisible())) {
        await t.clickCookie(p, how).catch(() => {});
        await t.sleep(gap);
      }
    };
    const loops = Promise.all([clicker(ada, 'key', 80), clicker(bob, 'tap', 250)]);
    try {
      // The timer moves, both scores move on both screens.
      await t.until(async () => (await t.text(ada.page, '#timer')) !== timer0, 10000, 'the timer to move');
      await t.until(async () => (await t.score(ada.page, 'me')) >= 5 && (await t.score(ada.page, 'opp')) >= 1, 6000, 'both scores to move on Ada\'s screen');
      await t.until(async () => (await t.score(bob.page, 'me')) >= 1 && (await t.score(bob.page, 'opp')) >= 5, 6000, 'both scores to move on Bob\'s screen');
      assert.equal(await ada.page.locator('#countdown').isVisible(), false, 'the countdown is gone');
      await t.screenshot(ada, shotDir, NAME, 'game');
      await t.screenshot(bob, shotDir, NAME, 'game');
      // Screen readers hear the scores through the aria-live region.
      assert.equal(await ada.page.getAttribute('#sr-live', 'aria-live'), 'polite');
      // Both reach the game-over screen.
      const [a, b] = await Promise.all([t.overScreen(ada.page), t.overScreen(bob.page)]);
      stop = true;
      await loops;
      const heard = await ada.page.evaluate(() => window.ocHeard);
      assert.ok(heard.some((s) => /^\d+ seconds left\. You \d+, Bob \d+\.$/.test(s)),
        `the scores were announced: ${JSON.stringify(heard)}`);
      // Consistent winner and scores.
      assert.equal(a.me, b.opp, 'Ada\'s score is the same on both screens');
      assert.equal(a.opp, b.me, 'Bob\'s score is the same on both screens');
      assert.ok(a.me > a.opp, `Ada clicked faster (${a.me} vs ${a.opp})`);
      assert.equal(a.result, 'win');
      assert.equal(b.result, 'loss');
      assert.equal(a.title, 'You win!');
      assert.equal(b.title, 'You lose');
      assert.match(a.reason, /Time/);
      assert.match(b.reason, /Time/);
      assert.equal(a.oppName, 'Bob');
      assert.equal(b.oppName, 'Ada');
      for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'over');

      // Back in the lobby: the leaderboard and the history show the game.
      for (const p of [ada, bob]) await p.page.click('#to-lobby');
      await ada.page.locator('#board-body tbody tr').nth(1).waitFor();
      const rows = await ada.page.locator('#board-body tbody tr').allTextContents();
      assert.match(rows[0], new RegExp(`Ada\\s*${a.me}\\s*1/1`), `leaderboard row 1: ${rows[0]}`);
      assert.match(rows[1], new RegExp(`Bob\\s*${a.opp}\\s*0/1`), `leaderboard row 2: ${rows[1]}`);
      await ada.page.locator('#history-body .game-row').first().waitFor();
      const hist = await t.text(ada.page, '#history-body .game-row');
      assert.match(hist, /vs Bob/);
      assert.match(hist, new RegExp(`${a.me} – ${a.opp}`));
      assert.match(hist, /Time’s up/);
      assert.equal(await t.text(ada.page, '#stat-played'), '1');
      assert.equal(await t.text(ada.page, '#stat-wins'), '1');
      assert.equal(await t.text(ada.page, '#stat-losses'), '0');
      assert.equal(await t.text(ada.page, '#stat-best'), String(a.me));
      await bob.page.locator('#history-body .game-row').first().waitFor();
      assert.match(await t.text(bob.page, '#history-body .game-row .badge'), /L/);
      assert.equal(await t.text(bob.page, '#stat-losses'), '1');
      for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'lobby');

      // Play, then Cancel: back in the lobby.
      await t.play(ada);
      await ada.page.click('#queue-cancel');
      await ada.page.locator('#screen-lobby').waitFor({ state: 'visible' });
    } finally {
      stop = true;
      await loops;
    }

    for (const p of [ada, bob]) {
      assert.deepEqual(t.unexpectedProblems(p), [], `${p.label}: no console errors`);
      assert.deepEqual(t.foreignRequests(p, server.base), [], `${p.label}: nothing loaded from elsewhere`);
    }
  } finally {
    await browser.close();
    const exit = await server.stop();
    assert.equal(exit.code, 0, `the server exits cleanly: ${server.log()}`);
  }
});
