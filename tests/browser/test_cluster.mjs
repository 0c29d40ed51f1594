// Browser test: the web client in a cluster (PROTOCOL.md, "Cluster (v2
// additions)"): a private Redis and two instances sharing it, one SQLite
// file and the token secret.
//
// 1. Ada's page is served by instance 1, Bob's by instance 2. Ada queues
//    first, so Bob's JOIN_QUEUE on instance 2 takes her ticket: instance 2
//    owns the game and instance 1 sends Ada MOVE. Her client follows it
//    without her noticing (no "welcome back", the countdown as usual), her
//    WebSocket ends up on instance 2, both play to a consistent GAME_OVER,
//    and the game is in both histories (one database).
//    In a second game (both on instance 2) Ada reloads: her page connects
//    to instance 1, which sends her back to instance 2, where the game
//    resumes. Then instance 2 stalls past its lease and is fenced: both
//    sockets close with 1012, both pages reconnect to their own instances
//    and hear GAME_OVER server_lost. Then a MOVE again, and instance 2 dies
//    mid-game (SIGKILL): Ada, whose page is on instance 1, is sent to the
//    dead owner until its lease lapses, then told the game does not count,
//    and can play again.
// 2. An instance whose Redis cannot be reached answers Play with
//    matchmaking_unavailable: the lobby says so in plain words, and Play
//    works again.
// 3. A (mocked) cluster that answers every connection with MOVE: the client
//    follows 3, then says so and stops.
// 4. An owner whose MOVE URL leads nowhere (a wrong --public-url): each
//    failed attempt is a drop, back to the page's own instance; when the
//    game has ended without the player, the page says how, from history.
//
// usage: node test_cluster.mjs OVERCOOKIED_BINARY WEB_DIR SCREENSHOT_DIR

import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as t from './lib.mjs';

const { binary, webDir, shotDir } = t.args();
const NAME = 'cluster';
const UNAVAILABLE = 'Matchmaking is unavailable right now. Try again in a moment.';
const SERVER_LOST = 'The server running your game stopped. The game does not count.';

// One browser for the three tests (each player has its own context).
let browser = null;
before(async () => { browser = await t.launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

/** Ada waits, Bob's Play makes the match; returns the new room, once it runs. */
async function playUntilRunning(ada, bob, lastRoom) {
  await t.play(ada);
  await ada.page.locator('#queue-status', { hasText: 'Waiting' }).waitFor();
  await t.play(bob);
  await Promise.all([t.waitGame(ada), t.waitGame(bob)]);
  const room = await ada.page.getAttribute('#screen-game', 'data-room-id');
  assert.notEqual(room, lastRoom, 'a new game');
  assert.equal(await bob.page.getAttribute('#screen-game', 'data-room-id'), room, 'the same room');
  await t.waitRunning(ada);
  return room;
}

/** A few points for the player; returns the score once acknowledged. */
async function scoreSome(p) {
  const base = await t.score(p.page, 'me');
  await t.clickMany(p, 3, 80, 'key');
  await t.until(async () => (await t.score(p.page, 'me')) >= base + 3, 3000, `${p.label} to score`);
  await t.sleep(300); // the last acknowledgements
  return t.score(p.page, 'me');
}

/** The sockets of a player's page that went to `port`. */
const socketsTo = (p, port) => p.sockets.filter((s) => new URL(s.url).port === String(port));

test('two instances: the client follows MOVE (after a reload too), both play; the owner is fenced, then dies: server_lost', { timeout: 180_000 }, async () => {
  const redis = await t.startRedis();
  let cluster = null;
  const players = [];
  try {
    // A 3 s countdown: time for the MOVE and the checks below on a busy
    // machine. 12 s games: time for a reload and a few clicks before the
    // owner is stalled or killed. A 1 s lease: the owner is taken for dead
    // soon.
    cluster = await t.startCluster(binary, webDir, redis.url, 2,
      ['--countdown', '3', '--game-length', '12', '--lease', '1']);
    const [one, two] = cluster.servers;
    const ada = await t.newPlayer(browser, one.base, 'Ada', t.SIZES[0], { controlSockets: true });
    const bob = await t.newPlayer(browser, two.base, 'Bob', t.SIZES[1], { controlSockets: true });
    players.push(ada, bob);
    await t.login(ada, 'Ada');
    await t.login(bob, 'Bob');

    // 1. Ada waits on instance 1; Bob's Play on instance 2 makes the match.
    await t.play(ada);
    await ada.page.locator('#queue-status', { hasText: 'Waiting' }).waitFor();
    await t.play(bob);
    await Promise.all([t.waitGame(ada), t.waitGame(bob)]);
    assert.equal(await t.text(ada.page, '#me-name'), 'Ada');
    assert.equal(await t.text(ada.page, '#opp-name'), 'Bob');
    assert.equal(await t.text(bob.page, '#me-name'), 'Bob');
    assert.equal(await t.text(bob.page, '#opp-name'), 'Ada');
    const room = await ada.page.getAttribute('#screen-game', 'data-room-id');
    assert.ok(room, 'Ada\'s game screen knows its room');
    assert.equal(await bob.page.getAttribute('#screen-game', 'data-room-id'), room, 'the same room');
    // To Ada it is a start like any other: the countdown, and no "welcome back".
    assert.equal(await ada.page.locator('#countdown').isVisible(), true, 'Ada sees the countdown');
    assert.match(await t.text(ada.page, '#countdown'), /Get ready to bake against Bob/);
    assert.doesNotMatch(await t.text(ada.page, '#toasts'), /Welcome back/);
    assert.equal(await ada.page.locator('#reconnect-banner').isVisible(), false);
    await t.screenshot(ada, shotDir, NAME, 'countdown');

    // Ada's page went to instance 2 after a MOVE from instance 1.
    const adaOne = socketsTo(ada, one.port), adaTwo = socketsTo(ada, two.port);
    assert.ok(adaOne.length >= 1 && adaOne.some((s) => s.received.includes('MOVE')),
      `instance 1 sent Ada MOVE: ${JSON.stringify(ada.sockets)}`);
    assert.equal(adaTwo.length, 1, `Ada's page connected to instance 2 once: ${JSON.stringify(ada.sockets)}`);
    assert.ok(adaTwo[0].received.includes('GAME_START'), 'instance 2 started Ada\'s game');
    assert.match(adaTwo[0].url, /\/ws\?token=[\w-]+\.[\w-]+\.[\w-]+$/, 'with her token, as on her own instance');
    assert.ok(adaOne.every((s) => s.closed), 'Ada\'s socket to instance 1 is closed');
    assert.ok(bob.sockets.every((s) => new URL(s.url).port === String(two.port)), 'Bob never left instance 2');

    // Play it out: Ada with the keyboard (fast), Bob by touch (slow).
    let stop = false;
    const clicker = async (p, how, gap) => {
      while (!stop && (await p.page.locator('#screen-game').isVisible())) {
        await t.clickCookie(p, how).catch(() => {});
        await t.sleep(gap);
      }
    };
    const loops = Promise.all([clicker(ada, 'key', 90), clicker(bob, 'tap', 300)]);
    let a, b;
    try {
      await t.until(async () => (await t.score(ada.page, 'me')) >= 3 && (await t.score(bob.page, 'opp')) >= 3,
        8000, 'Ada\'s clicks to count on both screens');
      await t.screenshot(ada, shotDir, NAME, 'game', false);
      await t.screenshot(bob, shotDir, NAME, 'game', false);
      [a, b] = await Promise.all([t.overScreen(ada.page), t.overScreen(bob.page)]);
    } finally {
      stop = true;
      await loops;
    }
    assert.equal(a.me, b.opp, 'Ada\'s score is the same on both screens');
    assert.equal(a.opp, b.me, 'Bob\'s score is the same on both screens');
    assert.ok(a.me > a.opp, `Ada clicked faster (${a.me} vs ${a.opp})`);
    assert.equal(a.result, 'win');
    assert.equal(b.result, 'loss');
    assert.match(a.reason, /Time/);
    assert.match(b.reason, /Time/);
    for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'over');

    // One database: instance 1 shows Ada the game instance 2 stored.
    await ada.page.click('#to-lobby');
    await ada.page.locator(`#history-body .game-row[data-game-id="${room}"]`).waitFor();
    assert.match(await t.text(ada.page, `#history-body .game-row[data-game-id="${room}"]`),
      new RegExp(`vs Bob.*${a.me} – ${a.opp}`));

    // 2. Instance 2 stalls mid-game (SIGSTOP) past its lease: instance 1
    // takes it for dead, and when it runs again it finds itself fenced and
    // closes its players with 1012. Both pages reconnect as after a drop,
    // each to its own instance, and hear that the game does not count.
    // Ada's connection stayed on instance 2 after the game: both play there.
    await bob.page.click('#to-lobby');
    const room2 = await playUntilRunning(ada, bob, room);
    assert.equal(new URL(ada.sockets.at(-1).url).port, String(two.port), 'Ada plays on instance 2');
    // Ada reloads: her page connects to instance 1, which sends her back.
    await ada.page.reload();
    await t.waitGame(ada);
    assert.equal(await ada.page.getAttribute('#screen-game', 'data-room-id'), room2, 'the same game after the reload');
    await ada.page.locator('#toasts .toast', { hasText: 'Welcome back' }).waitFor();
    assert.equal(new URL(ada.sockets.at(-2).url).port, String(one.port));
    assert.ok(ada.sockets.at(-2).received.includes('MOVE'), 'instance 1 sent her on');
    assert.equal(new URL(ada.sockets.at(-1).url).port, String(two.port));
    const kept2 = await scoreSome(ada);
    two.signal('SIGSTOP');
    await t.sleep(2500); // the 1 s lease, and instance 1's reaper, renewing every 1/3 s
    two.signal('SIGCONT');
    const [a2, b2] = await Promise.all([t.overScreen(ada.page), t.overScreen(bob.page)]);
    for (const r of [a2, b2]) {
      assert.equal(r.reason, SERVER_LOST);
      assert.equal(r.result, 'unknown');
      assert.equal(r.title, 'Game over');
    }
    assert.equal(a2.me, kept2, 'the scores Ada saw stay on the screen');
    const closes = async (p) => p.page.evaluate(() => window.__ws.closes.map((c) => c.code));
    assert.ok((await closes(ada)).includes(1012), `Ada's socket was closed with 1012: ${await closes(ada)}`);
    assert.ok((await closes(bob)).includes(1012), `Bob's socket was closed with 1012: ${await closes(bob)}`);
    await t.until(async () => ada.sockets.at(-1).url.includes(`:${one.port}/`) && bob.sockets.at(-1).url.includes(`:${two.port}/`),
      t.STEP_MS, 'each page to be back on its own instance');
    for (const p of [ada, bob]) await t.screenshot(p, shotDir, NAME, 'fenced');

    // 3. Across instances again (Ada's MOVE as in 1), and instance 2, the
    // owner, dies mid-game (SIGKILL). Ada's client reconnects to instance 1
    // (her page's), which sends her to the dead owner while its lease lasts
    // (an unreachable target is a drop: back to instance 1), then tells her
    // the game is lost.
    for (const p of [ada, bob]) await p.page.click('#to-lobby');
    const room3 = await playUntilRunning(ada, bob, room2);
    assert.equal(new URL(ada.sockets.at(-1).url).port, String(two.port), 'Ada was sent to instance 2 again');
    assert.ok(ada.sockets.at(-2).received.includes('MOVE'), 'by a MOVE');
    const kept3 = await scoreSome(ada);
    const dead = await two.stop({ signal: 'SIGKILL' });
    assert.equal(dead.sig, 'SIGKILL');
    ada.allowed.push(/WebSocket connection to .* failed/);
    const lost = await t.overScreen(ada.page);
    assert.equal(lost.reason, SERVER_LOST);
    assert.equal(lost.result, 'unknown');
    assert.equal(lost.me, kept3, 'the scores Ada saw stay on the screen');
    await t.screenshot(ada, shotDir, NAME, 'server-lost');
    assert.equal(new URL(ada.sockets.at(-1).url).port, String(one.port), 'Ada is back on her page\'s instance');
    // And Ada may play again: her instance queues her.
    await ada.page.click('#again');
    await ada.page.locator('#queue-status', { hasText: 'Waiting' }).waitFor();
    await ada.page.click('#queue-cancel');
    await ada.page.locator('#screen-lobby').waitFor({ state: 'visible' });
    for (const r of [room2, room3]) {
      await ada.page.locator(`#history-body .game-row[data-game-id="${r}"]`).waitFor();
      assert.match(await t.text(ada.page, `#history-body .game-row[data-game-id="${r}"]`), /did not count/);
    }
    assert.equal(await t.text(ada.page, '#stat-losses'), '0', 'a game that did not count is no loss');
    await t.screenshot(ada, shotDir, NAME, 'lobby');
    bob.allowed.push(/WebSocket connection to .* failed/, /Failed to load resource/);

    for (const p of [ada, bob]) {
      assert.deepEqual(t.unexpectedProblems(p), [], `${p.label}: no console errors`);
      const hosts = cluster.servers.map((s) => new URL(s.base).host);
      assert.deepEqual(t.foreignRequests(p, p === ada ? one.base : two.base)
        .filter((u) => !hosts.includes(new URL(u).host)), [], `${p.label}: nothing loaded from elsewhere`);
    }
  } finally {
    for (const p of players) await p.context.close().catch(() => {});
    const exits = cluster ? await cluster.stop() : [];
    await redis.stop();
    assert.equal(exits[0]?.code, 0, `instance 1 exits cleanly: ${cluster?.servers[0].log()}`);
  }
});

test('an instance that cannot reach Redis: matchmaking is unavailable, in plain words, and Play works again', { timeout: 60_000 }, async () => {
  const nobody = await t.freePort(); // nothing listens there
  const port = await t.freePort();
  const server = await t.startServer(binary, webDir, ['--redis', `redis://127.0.0.1:${nobody}`], { port });
  let cy = null;
  try {
    cy = await t.newPlayer(browser, server.base, 'Cy', t.SIZES[1]);
    await t.login(cy, 'Cy');
    for (let i = 0; i < 2; i++) {
      await cy.page.click('#play');
      const notice = cy.page.locator('#lobby-notice');
      await notice.waitFor({ state: 'visible' });
      assert.equal(await t.text(cy.page, '#lobby-notice'), UNAVAILABLE);
      assert.equal(await cy.page.getAttribute('#lobby-notice', 'data-tone'), 'error');
      assert.equal(await cy.page.locator('#screen-lobby').isVisible(), true);
      assert.equal(await cy.page.locator('#conn-pill[data-state="online"]').count(), 1, 'the connection stays open');
      if (i === 0) await t.screenshot(cy, shotDir, NAME, 'unavailable');
    }
    assert.equal(cy.sockets.length, 1, 'one connection throughout');
    assert.deepEqual(t.unexpectedProblems(cy), [], 'no console errors');
  } finally {
    if (cy) await cy.context.close().catch(() => {});
    const exit = await server.stop();
    assert.equal(exit.code, 0, `the server exits cleanly: ${server.log()}`);
  }
});

test('a cluster that sends the player on and on: the client follows 3 MOVEs, then says so and stops', { timeout: 60_000 }, async () => {
  const server = await t.startServer(binary, webDir);
  let dee = null;
  try {
    dee = await t.newPlayer(browser, server.base, 'Dee', t.SIZES[0]);
    // Every instance of this misconfigured cluster answers with MOVE to
    // the next one (a mocked WebSocket: no instance is real).
    const seen = [];
    await dee.context.routeWebSocket(/\/ws\?token=/, (ws) => {
      const n = seen.push(ws.url());
      ws.send(JSON.stringify({ type: 'MOVE', payload: { url: `ws://127.0.0.1:${20000 + n}/ws`, roomId: 'r-bounce' } }));
      ws.close({ code: 4001, reason: 'moved' });
    });
    await dee.page.reload(); // routes apply to pages loaded after them
    await dee.page.fill('#login-name', 'Dee');
    await dee.page.click('#login-submit');
    await dee.page.locator('#lobby-notice', { hasText: 'kept sending us elsewhere' }).waitFor({ timeout: t.STEP_MS });
    assert.equal(await t.text(dee.page, '#lobby-notice'),
      'We could not connect you to your game: the game servers kept sending us elsewhere. Try again in a moment.');
    await t.screenshot(dee, shotDir, NAME, 'bounced');
    await t.sleep(1500); // nothing more happens by itself
    assert.equal(seen.length, 4, `the page's own server, then 3 MOVEs followed: ${JSON.stringify(seen)}`);
    assert.equal(new URL(seen[0]).port, new URL(server.base).port);
    for (let i = 1; i < 4; i++) {
      assert.equal(new URL(seen[i]).port, String(20000 + i), `MOVE ${i} followed`);
      assert.equal(new URL(seen[i]).searchParams.get('token'), new URL(seen[0]).searchParams.get('token'), 'with the same token');
    }
    assert.deepEqual(t.unexpectedProblems(dee), [], 'no console errors');
  } finally {
    if (dee) await dee.context.close().catch(() => {});
    const exit = await server.stop();
    assert.equal(exit.code, 0, `the server exits cleanly: ${server.log()}`);
  }
});

test('a MOVE target that cannot be reached is a drop: back to the page\'s instance, then the result', { timeout: 90_000 }, async () => {
  const redis = await t.startRedis();
  const nowhere = await t.freePort();
  let cluster = null;
  const players = [];
  try {
    // Instance 2 tells other instances to send its players to a dead port.
    cluster = await t.startCluster(binary, webDir, redis.url, 2,
      (i) => ['--countdown', '2', '--game-length', '8', '--reconnect-grace', '3',
        ...(i === 1 ? ['--public-url', `ws://127.0.0.1:${nowhere}/ws`] : [])]);
    const [one, two] = cluster.servers;
    const ada = await t.newPlayer(browser, one.base, 'Ada', t.SIZES[1]);
    const bob = await t.newPlayer(browser, two.base, 'Bob', t.SIZES[0]);
    players.push(ada, bob);
    ada.allowed.push(/WebSocket connection to .* failed/);
    await t.login(ada, 'Ada');
    await t.login(bob, 'Bob');
    await t.play(ada);
    await ada.page.locator('#queue-status', { hasText: 'Waiting' }).waitFor();
    await t.play(bob);
    await t.waitGame(bob);
    // Ada is told her game is found, and her client keeps trying.
    await ada.page.locator('#queue-status', { hasText: 'Connecting to your game' }).waitFor();
    await t.screenshot(ada, shotDir, NAME, 'connecting', false);
    // Bob wins when Ada's grace runs out; Ada's page, back on instance 1,
    // hears nothing more and finds the result in her history.
    const b = await t.overScreen(bob.page);
    assert.equal(b.result, 'win');
    const a = await t.overScreen(ada.page);
    assert.equal(a.result, 'loss');
    assert.equal(a.reason, 'You were disconnected for too long.');
    assert.match(await t.text(ada.page, '#over-note'), /ended while you were disconnected/);
    const tried = ada.sockets.filter((x) => x.url.includes(`:${nowhere}/`)).length;
    assert.ok(tried >= 2, `Ada's client tried the target more than once (${tried})`);
    assert.ok(tried <= 12, `about once a second, not in a tight loop (${tried})`);
    assert.equal(new URL(ada.sockets.at(-1).url).port, String(one.port), 'Ada is on her page\'s instance');
    assert.equal(ada.sockets.filter((x) => x.url.includes(`:${two.port}/`)).length, 0);
    await t.screenshot(ada, shotDir, NAME, 'unreachable-over');
    for (const p of [ada, bob]) assert.deepEqual(t.unexpectedProblems(p), [], `${p.label}: no console errors`);
  } finally {
    for (const p of players) await p.context.close().catch(() => {});
    const exits = cluster ? await cluster.stop() : [];
    await redis.stop();
    assert.deepEqual(exits.map((e) => e.code), [0, 0], 'both instances exit cleanly');
  }
});
