// Browser test: the golden cookie.
//
// A golden cookie appears on both screens at the same place; one player
// grabs it, it vanishes for both, the double-points bar shows (for the
// opponent too, in red), and the claimer's next clicks count 2 each, then 1
// again once the bonus is over. Then the claimer quits through the
// confirmation dialog: both see the quit spelled out, and history says so.
//
// usage: node test_golden.mjs OVERCOOKIED_BINARY WEB_DIR SCREENSHOT_DIR

import test from 'node:test';
import assert from 'node:assert/strict';
import * as t from './lib.mjs';

const { binary, webDir, shotDir } = t.args();
const NAME = 'golden';

test('a golden cookie is claimed by one player, whose next clicks count double', { timeout: 90_000 }, async () => {
  const server = await t.startServer(binary, webDir, ['--game-length', '20']);
  const browser = await t.launchBrowser();
  try {
    const ada = await t.newPlayer(browser, server.base, 'Ada', t.SIZES[0]);
    const bob = await t.newPlayer(browser, server.base, 'Bob', t.SIZES[1]);
    await t.login(ada, 'Ada');
    await t.login(bob, 'Bob');
    await t.play(ada);
    await t.play(bob);
    await Promise.all([t.waitGame(ada), t.waitGame(bob)]);

    // Record every +N that floats up on Ada's screen.
    await ada.page.evaluate(() => {
      window.__floaters = [];
      new MutationObserver((list) => {
        for (const m of list) for (const n of m.addedNodes) {
          if (n.classList?.contains('floater')) window.__floaters.push(n.textContent);
        }
      }).observe(document.getElementById('fx'), { childList: true });
    });

    // Warm up: a few single points each once the game runs.
    await t.waitRunning(ada);
    await t.clickMany(ada, 3, 120, 'key');
    await t.clickMany(bob, 2, 120);
    await t.until(async () => (await t.score(ada.page, 'me')) >= 1, 5000, 'Ada to score');

    // The golden cookie appears on both screens, at the same place.
    const gA = ada.page.locator('#golden');
    const gB = bob.page.locator('#golden');
    await gA.waitFor({ state: 'visible', timeout: 8000 });
    await gB.waitFor({ state: 'visible', timeout: 2000 });
    const posA = await gA.evaluate((e) => [e.style.left, e.style.top]);
    const posB = await gB.evaluate((e) => [e.style.left, e.style.top]);
    assert.deepEqual(posA, posB, 'same spot on both screens');
    await t.sleep(500); // let its entrance animation finish
    await t.screenshot(ada, shotDir, NAME, 'game', false);
    await t.screenshot(bob, shotDir, NAME, 'game', false);

    // Ada grabs it with the mouse, aimed where it is as the click happens
    // (forced: it bobs forever, so it is never "stable" to Playwright), and
    // the bar gets the step time: under ASan on a loaded machine the claim's
    // answer took longer than the 4 s this waited before.
    // A cookie low in the field may sit below the fold: scrolled to first,
    // by the page itself (Playwright's scroll waits for the element to be
    // stable, which a bobbing cookie never is). Playwright can still find
    // it "outside of the viewport" when the page moves between its scroll
    // and its click (seen once in ~50 runs, with the cookie at 78% down);
    // that click never reached the page, so it is tried again, at most
    // three times, while the cookie is up.
    for (let attempt = 1; ; attempt++) {
      try {
        await gA.evaluate((e) => e.scrollIntoView({ block: 'center' }));
        await gA.click({ force: true, timeout: t.STEP_MS });
        break;
      } catch (e) {
        if (attempt === 3 || !/outside of the viewport/.test(String(e))) throw e;
      }
    }
    await ada.page.locator('#bonus[data-who="me"]').waitFor({ state: 'visible', timeout: t.STEP_MS });
    // Bob sees it vanish and Ada's double-points bar (each screen removes
    // the cookie when the claim arrives, after its exit animation).
    await bob.page.locator('#bonus[data-who="opp"]').waitFor({ state: 'visible', timeout: 4000 });
    await gA.waitFor({ state: 'hidden', timeout: 4000 });
    await gB.waitFor({ state: 'hidden', timeout: 4000 });
    assert.match(await t.text(bob.page, '#bonus-label'), /Ada has ×2/);
    const base = await t.score(ada.page, 'me');
    // Her next clicks count double while the bar runs.
    await t.clickMany(ada, 4, 70, 'key');
    await t.until(async () => (await t.score(ada.page, 'me')) === base + 8, 4000,
      `Ada's score to go from ${base} to ${base + 8}`);
    await t.screenshot(ada, shotDir, NAME, 'bonus', false);
    const floaters = await ada.page.evaluate(() => window.__floaters);
    assert.ok(floaters.includes('+2'), `a +2 floated up (${floaters.join(' ')})`);
    assert.ok(floaters.includes('+1'), 'a +1 floated up before the bonus');

    // Bob sees her new score (and the bar, if it is still running).
    await t.screenshot(bob, shotDir, NAME, 'bonus', false);
    await t.until(async () => (await t.score(bob.page, 'opp')) === base + 8, 2000, 'Bob to see Ada\'s score');

    // When the bar runs out, clicks are worth 1 again. With Space, not the
    // mouse: by now the next golden cookie may lie over the big one and
    // take a mouse click. The bar starts when the claim arrives, so it ends
    // after the server's bonus; should a loaded machine still get a +2, the
    // click is tried again (a bonus that never ends fails all ten).
    await ada.page.locator('#bonus').waitFor({ state: 'hidden', timeout: 10000 });
    const gains = [];
    for (let i = 0; i < 10 && gains.at(-1) !== 1; i++) {
      await t.sleep(150);
      const before = await t.score(ada.page, 'me');
      await t.clickCookie(ada, 'key');
      const now = await t.until(async () => {
        const s = await t.score(ada.page, 'me');
        return s > before ? s : 0;
      }, 2000, 'the click after the bonus to score');
      gains.push(now - before);
    }
    assert.equal(gains.at(-1), 1, `a single point after the bonus (gains ${gains.join(' ')})`);

    // Ada quits: the dialog asks first, and "Keep baking" keeps her in.
    await ada.page.click('#quit');
    await ada.page.locator('#quit-dialog[open]').waitFor();
    await t.screenshot(ada, shotDir, NAME, 'quit-dialog');
    await ada.page.click('#quit-dialog button[value="stay"]');
    await ada.page.locator('#quit-dialog').waitFor({ state: 'hidden' });
    assert.equal(await ada.page.locator('#screen-game').isVisible(), true);
    await ada.page.click('#quit');
    await ada.page.click('#quit-confirm');
    const [a, b] = await Promise.all([t.overScreen(ada.page), t.overScreen(bob.page)]);
    assert.equal(a.result, 'loss');
    assert.equal(b.result, 'win');
    assert.equal(a.reason, 'You quit the game.');
    assert.equal(b.reason, 'Ada quit the game.');
    assert.equal(a.me, b.opp);
    assert.equal(a.opp, b.me);
    for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'over');

    // Play again from the game-over screen, then think better of it.
    await bob.page.click('#again');
    await bob.page.locator('#screen-queue').waitFor({ state: 'visible' });
    await bob.page.click('#queue-cancel');
    await bob.page.locator('#screen-lobby').waitFor({ state: 'visible' });
    await ada.page.click('#to-lobby');

    // History: the quit is recorded with its reason.
    await ada.page.locator('#history-body .game-row').first().waitFor();
    assert.match(await t.text(ada.page, '#history-body .game-row'), /You quit/);
    await bob.page.locator('#history-body .game-row').first().waitFor();
    assert.match(await t.text(bob.page, '#history-body .game-row'), /Opponent quit/);
    for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'lobby');

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
