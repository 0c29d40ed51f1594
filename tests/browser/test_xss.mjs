// Browser test: names are text, never markup; login errors are shown; the
// session outlives a reload and ends with Log out; a second tab takes over.
//
// Two players whose names are markup (<script>…, <img onerror>) play a game;
// every place a name shows (lobby, game, game over, leaderboard, history) must
// show the characters as typed, create no element, run nothing and load
// nothing.
//
// usage: node test_xss.mjs OVERCOOKIED_BINARY WEB_DIR SCREENSHOT_DIR

import test from 'node:test';
import assert from 'node:assert/strict';
import * as t from './lib.mjs';

const { binary, webDir, shotDir } = t.args();
const NAME = 'xss';
const EVE = '<script>throw 1</script>'; // 24 characters: the longest allowed
const MAL = '<img src=x onerror=f()>';

/** Markup that must never appear in the page as elements. */
async function injected(page) {
  return page.evaluate(() => ({
    scripts: [...document.scripts].filter((s) => !s.src.endsWith('/js/main.js')).length,
    imgs: document.querySelectorAll('img').length,
  }));
}

test('names containing <script> and <img onerror> are shown as text everywhere', { timeout: 90_000 }, async () => {
  const server = await t.startServer(binary, webDir);
  const browser = await t.launchBrowser();
  try {
    const eve = await t.newPlayer(browser, server.base, 'Eve', t.SIZES[0]);
    const mal = await t.newPlayer(browser, server.base, 'Mal', t.SIZES[1]);

    // Failed logins say why. Empty: caught before asking the server.
    await eve.page.click('#login-submit');
    await eve.page.locator('#login-error').waitFor({ state: 'visible' });
    assert.match(await t.text(eve.page, '#login-error'), /Type a name/);
    // Invisible characters only: the server refuses (400), and says why.
    eve.allowed.push(/status of 400/);
    await eve.page.fill('#login-name', '\u200b\u200b');
    await eve.page.click('#login-submit');
    await eve.page.locator('#login-error', { hasText: 'did not accept' }).waitFor();
    assert.match(await t.text(eve.page, '#login-error'), /1-24 printable characters/);
    assert.equal(await eve.page.getAttribute('#login-name', 'aria-invalid'), 'true');
    await t.screenshot(eve, shotDir, NAME, 'login-error');

    await t.login(eve, EVE);
    await t.login(mal, MAL);
    assert.equal(await t.text(eve.page, '#lobby-name'), EVE);
    assert.equal(await t.text(eve.page, '#lobby-greeting'), EVE);
    assert.equal(await t.text(mal.page, '#lobby-name'), MAL);

    // The session survives a reload.
    await mal.page.reload();
    await mal.page.locator('#screen-lobby').waitFor({ state: 'visible' });
    assert.equal(await t.text(mal.page, '#lobby-greeting'), MAL);
    await mal.page.locator('#conn-pill[data-state="online"]').waitFor();

    // A game: names in the HUD and on the game-over screen.
    await t.play(eve);
    await t.play(mal);
    await Promise.all([t.waitGame(eve), t.waitGame(mal)]);
    assert.equal(await t.text(eve.page, '#opp-name'), MAL);
    assert.equal(await t.text(mal.page, '#opp-name'), EVE);
    assert.equal(await t.text(eve.page, '#me-name'), EVE);
    await t.waitRunning(eve);
    let stop = false;
    const clicker = async (p, how, gap) => {
      while (!stop && (await p.page.locator('#screen-game').isVisible())) {
        await t.clickCookie(p, how).catch(() => {});
        await t.sleep(gap);
      }
    };
    // Clicking faster than the server allows: a gentle note, no error.
    // (80 key presses at once, well past the 30-click burst.)
    await eve.page.evaluate(() => {
      for (let i = 0; i < 80; i++) {
        document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
      }
    });
    await eve.page.locator('#toasts .toast', { hasText: 'Easy, speedy' }).waitFor({ timeout: t.STEP_MS });
    const loops = Promise.all([clicker(eve, 'mouse', 90), clicker(mal, 'tap', 110)]);
    try {
      await t.until(async () => (await t.score(eve.page, 'opp')) > 0, t.STEP_MS, 'Mal to score');
      await t.screenshot(eve, shotDir, NAME, 'game', false);
      await t.screenshot(mal, shotDir, NAME, 'game', false);
      const [e, m] = await Promise.all([t.overScreen(eve.page), t.overScreen(mal.page)]);
      stop = true;
      await loops;
      assert.equal(e.oppName, MAL);
      assert.equal(m.oppName, EVE);
      assert.equal(e.meName, EVE);
      assert.equal(e.me, m.opp);
      assert.equal(e.opp, m.me);
      assert.ok(['win', 'loss', 'draw'].includes(e.result));
      const mirror = { win: 'loss', loss: 'win', draw: 'draw' };
      assert.equal(m.result, mirror[e.result], 'one winner, seen by both');
      if (e.result !== 'draw') assert.match(e.reason, new RegExp(`Time’s up! (You|${MAL.replace(/[()]/g, '\\$&')}) won by`));
      for (const p of [eve, mal]) await t.screenshot(p, shotDir, NAME, 'over');
    } finally {
      stop = true;
      await loops;
    }

    // Leaderboard and history.
    for (const p of [eve, mal]) await p.page.click('#to-lobby');
    await eve.page.locator('#board-body tbody tr').nth(1).waitFor();
    const names = await eve.page.locator('#board-body td.who').allTextContents();
    assert.deepEqual([...names].sort(), [EVE, MAL].sort());
    await eve.page.locator('#history-body .game-row').first().waitFor();
    assert.equal(await t.text(eve.page, '#history-body .opp-name'), MAL);
    await mal.page.locator('#history-body .game-row').first().waitFor();
    assert.equal(await t.text(mal.page, '#history-body .opp-name'), EVE);
    for (const p of [eve, mal]) await t.screenshot(p, shotDir, NAME, 'lobby');

    // Nothing was created, nothing was fetched; nothing ran (an onerror
    // calling f() would be a page error, which fails the test below).
    for (const p of [eve, mal]) {
      assert.deepEqual(await injected(p.page), { scripts: 0, imgs: 0 }, `${p.label}: no injected elements`);
      assert.ok(!p.requests.some((u) => /\/x$/.test(u)), `${p.label}: the <img> was never loaded`);
    }

    // A second tab for Eve takes over; the first says so and can take back.
    const tab2 = await eve.context.newPage();
    await tab2.goto('/');
    await tab2.locator('#screen-lobby').waitFor({ state: 'visible' });
    await eve.page.locator('#screen-away').waitFor({ state: 'visible' });
    await t.screenshot(eve, shotDir, NAME, 'away');
    await tab2.close();

    // Log out: back to the login screen, and a reload stays logged out.
    await mal.page.click('#logout');
    await mal.page.locator('#screen-login').waitFor({ state: 'visible' });
    await mal.page.reload();
    await mal.page.locator('#screen-login').waitFor({ state: 'visible' });

    for (const p of [eve, mal]) {
      assert.deepEqual(t.unexpectedProblems(p), [], `${p.label}: no console errors`);
      assert.deepEqual(t.foreignRequests(p, server.base), [], `${p.label}: nothing loaded from elsewhere`);
    }
  } finally {
    await browser.close();
    const exit = await server.stop();
    assert.equal(exit.code, 0, `the server exits cleanly: ${server.log()}`);
  }
});
