// Shared helpers for the browser tests: the live server on port 0 with a
// temporary database, headless Debian chromium through playwright-core, and
// players (one browser context each) that log in, queue and play.
//
// Every wait is bounded: the helpers take explicit timeouts and the default
// Playwright timeouts are lowered so a hang fails fast with a clear message.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let chromium;
try {
  ({ chromium } = require(path.join(root, 'node_modules', 'playwright-core')));
} catch {
  console.error(`playwright-core is not installed in ${root}/node_modules: run tools/test, or npm ci there`);
  process.exit(1);
}
if (!fs.existsSync('/usr/bin/chromium')) {
  console.error('/usr/bin/chromium is missing: run tools/test as root, or apt-get install chromium');
  process.exit(1);
}

export const STEP_MS = 10_000; // any single wait
export const SIZES = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

/** argv: BINARY WEB_DIR SCREENSHOT_DIR */
export function args() {
  const [binary, webDir, shotDir] = process.argv.slice(2);
  if (!binary || !webDir || !shotDir) {
    console.error('usage: node test_X.mjs OVERCOOKIED_BINARY WEB_DIR SCREENSHOT_DIR');
    process.exit(2);
  }
  fs.mkdirSync(shotDir, { recursive: true });
  return { binary, webDir, shotDir };
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- The server -----------------------------------------------------------------------

/**
 * Starts overcookied on port 0 with a temporary database and short timings,
 * from the root directory (a server must not depend on where it is
 * started). webDir '-': no --static, the server finds its own files (an
 * installed server). Returns {base, stop(), log()}.
 * opts.port: a fixed port (a cluster instance needs one); opts.db: a
 * database file the caller owns (instances of a cluster share one).
 */
export async function startServer(binary, webDir, extra = [], { port = 0, db = '' } = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oc-browser-'));
  const argv = [
    '--port', String(port), '--db', db || path.join(tmp, 'test.db'),
    ...(webDir === '-' ? [] : ['--static', webDir]),
    '--secret', 'browser-test-secret-0123456789',
    '--countdown', '1', '--game-length', '8', '--golden-min', '2', '--golden-max', '3',
    '--reconnect-grace', '5', '--log-level', 'warn',
    ...extra,
  ];
  const proc = spawn(binary, argv, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
  // If this script dies without stopping it, the server goes too.
  const orphan = () => { if (proc.exitCode === null) proc.kill('SIGKILL'); };
  process.on('exit', orphan);
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  let base;
  try {
    base = await withTimeout(new Promise((resolve, reject) => {
      proc.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/[^\s]+?)\/?\s/.exec(out);
        if (m) resolve(m[1]);
      });
      proc.on('error', (e) => reject(new Error(`cannot start ${binary}: ${e.message}`)));
      proc.on('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${err}`)));
    }), STEP_MS, 'the server to listen');
  } catch (e) {
    // Nothing is left behind: no process, no temporary directory.
    if (proc.exitCode === null && proc.pid !== undefined) proc.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  let exited = null;
  const exitP = new Promise((resolve) => proc.on('exit', (code, sig) => { exited = { code, sig }; resolve(exited); }));
  return {
    base,
    log: () => err,
    /** Sends a signal and goes on (SIGSTOP, SIGCONT: a stall). */
    signal: (sig) => { if (!exited) proc.kill(sig); },
    /** signal: SIGKILL plays a crash (the exit is then {code: null, sig}). */
    async stop({ signal = 'SIGTERM' } = {}) {
      if (!exited) proc.kill(signal);
      const r = await withTimeout(exitP, STEP_MS, 'the server to stop').catch((e) => {
        proc.kill('SIGKILL');
        throw e;
      });
      fs.rmSync(tmp, { recursive: true, force: true });
      return r;
    },
  };
}

// ---- The browser ------------------------------------------------------------------------

export async function launchBrowser() {
  // launch() gives the browser a fresh temporary profile (user-data dir)
  // and removes it on close; nothing is ever downloaded.
  return withTimeout(chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: STEP_MS * 2,
  }), STEP_MS * 3, 'chromium to start');
}

/**
 * A player: its own browser context (storage, cookies), one page.
 * size: one of SIZES; phone contexts get touch.
 */
export async function newPlayer(browser, base, label, size, { controlSockets = false } = {}) {
  const phone = size.width < 600;
  const context = await browser.newContext({
    viewport: { width: size.width, height: size.height },
    deviceScaleFactor: 1,
    hasTouch: phone,
    isMobile: phone,
    baseURL: base,
  });
  context.setDefaultTimeout(STEP_MS);
  if (controlSockets) await context.addInitScript(socketControl);
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  // Every WebSocket the page opens, with the types of the messages it got.
  const sockets = [];
  page.on('websocket', (ws) => {
    const entry = { url: ws.url(), received: [], closed: false };
    sockets.push(entry);
    ws.on('framereceived', (f) => {
      try {
        entry.received.push(String(JSON.parse(String(f.payload)).type));
      } catch {
        entry.received.push('?');
      }
    });
    ws.on('close', () => { entry.closed = true; });
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    problems.push(`unexpected dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  await page.goto('/');
  return { label, size, context, page, problems, requests, sockets, allowed: [] };
}

/**
 * Runs in the page before its scripts: keeps every WebSocket the page opens,
 * and while window.__ws.blocked is set, points new ones at a closed port, so
 * a test can cut the connection and keep it cut (a network outage). Each
 * close's code goes to window.__ws.closes (the page sees it; Playwright
 * does not say).
 */
function socketControl() {
  const Native = window.WebSocket;
  const state = { all: [], blocked: false, closes: [] };
  window.__ws = state;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(state.blocked ? 'ws://127.0.0.1:9/blocked' : url, protocols);
      state.all.push(this);
      this.addEventListener('close', (e) => state.closes.push({ url: String(url), code: e.code }));
    }
  };
}

/** Console lines a cut connection causes, which the test expects. */
export const BLOCKED_SOCKET = /127\.0\.0\.1:9\/blocked/;

/** Cuts this player's connection and keeps it cut until restore(). */
export async function cutConnection(player) {
  player.allowed.push(BLOCKED_SOCKET);
  await player.page.evaluate(() => {
    window.__ws.blocked = true;
    for (const ws of window.__ws.all) ws.close();
  });
}

export async function restoreConnection(player) {
  await player.page.evaluate(() => { window.__ws.blocked = false; });
}

/** Console errors and page errors, minus the ones a test expected. */
export function unexpectedProblems(player) {
  return player.problems.filter((p) => !player.allowed.some((re) => re.test(p)));
}

/** Every request must go to the test server: nothing loads from the internet. */
export function foreignRequests(player, base) {
  const origin = new URL(base).host;
  return player.requests.filter((u) => {
    try {
      const url = new URL(u);
      return !(url.host === origin || url.protocol === 'data:' || url.protocol === 'blob:');
    } catch {
      return true;
    }
  });
}

// ---- Flows --------------------------------------------------------------------------------

export async function login(player, name) {
  const { page } = player;
  await page.locator('#screen-login').waitFor({ state: 'visible' });
  await page.fill('#login-name', name);
  await page.click('#login-submit');
  await page.locator('#screen-lobby').waitFor({ state: 'visible' });
  await page.locator('#conn-pill[data-state="online"]').waitFor();
}

/** Presses Play: the queue screen, or the game at once if someone waits. */
export async function play(player) {
  await player.page.click('#play');
  await player.page.locator('#screen-queue:not([hidden]), #screen-game:not([hidden])').waitFor();
}

export async function waitGame(player) {
  await player.page.locator('#screen-game').waitFor({ state: 'visible', timeout: STEP_MS });
}

/** Waits for the countdown to be over (the first tick ends it). */
export async function waitRunning(player) {
  await player.page.locator('#countdown').waitFor({ state: 'hidden', timeout: 8000 });
}

export async function text(page, selector) {
  return (await page.locator(selector).textContent({ timeout: STEP_MS })) ?? '';
}

export async function score(page, who = 'me') {
  return Number(await text(page, `#${who}-score`));
}

/** Waits until fn() is truthy (polling); returns its value. */
export async function until(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A click on the big cookie the way this player's device does it. */
export async function clickCookie(player, how = 'auto') {
  const { page } = player;
  const mode = how === 'auto' ? (player.size.width < 600 ? 'tap' : 'mouse') : how;
  if (mode === 'key') {
    await page.keyboard.press('Space');
    return;
  }
  const box = await page.locator('#cookie').boundingBox();
  const x = box.x + box.width * (0.35 + Math.random() * 0.3);
  const y = box.y + box.height * (0.35 + Math.random() * 0.3);
  if (mode === 'tap') await page.touchscreen.tap(x, y);
  else await page.mouse.click(x, y);
}

/** Clicks `n` times, `gapMs` apart. */
export async function clickMany(player, n, gapMs, how = 'auto') {
  for (let i = 0; i < n; i++) {
    await clickCookie(player, how);
    if (gapMs) await sleep(gapMs);
  }
}

export async function screenshot(player, shotDir, test, screen, settle = true) {
  const file = path.join(shotDir, `${test}-${screen}-${player.size.width}x${player.size.height}.png`);
  if (settle) await sleep(420); // let the screen's entrance animation finish
  await player.page.screenshot({ path: file, timeout: STEP_MS });
  // Layouts must fit the width: nothing may stick out sideways.
  const { scroll, width } = await player.page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
  }));
  if (scroll > width) throw new Error(`${test}/${screen} at ${width}px: the page is ${scroll}px wide`);
  return file;
}

/** Reads the game-over screen. */
export async function overScreen(page) {
  await page.locator('#screen-over').waitFor({ state: 'visible', timeout: STEP_MS * 2 });
  return {
    result: await page.getAttribute('#over-card', 'data-result'),
    title: await text(page, '#over-title'),
    reason: await text(page, '#over-reason'),
    me: Number(await text(page, '#over-me-score')),
    opp: Number(await text(page, '#over-opp-score')),
    meName: await text(page, '#over-me-name'),
    oppName: await text(page, '#over-opp-name'),
  };
}

// ---- A cluster: a private Redis and several instances ----------------------------------

/**
 * A loopback TCP port that was free a moment ago: bound on port 0, read,
 * closed. (Another process could take it in between; on a quiet test
 * machine that does not happen.)
 */
export async function freePort() {
  return withTimeout(new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  }), STEP_MS, 'a free port');
}

/** One PING to 127.0.0.1:port: true on +PONG. */
function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

/**
 * A private redis-server on a free loopback port, in a temporary directory,
 * persisting nothing. Returns {port, url, stop()}.
 */
export async function startRedis() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oc-redis-'));
  const port = await freePort();
  const proc = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', tmp, '--daemonize', 'no', '--logfile', path.join(tmp, 'redis.log'),
  ], { cwd: tmp, stdio: 'ignore' });
  const orphan = () => { if (proc.exitCode === null) proc.kill('SIGKILL'); };
  process.on('exit', orphan);
  let exited = null;
  const exitP = new Promise((resolve) => proc.on('exit', (code, sig) => { exited = { code, sig }; resolve(exited); }));
  proc.on('error', () => {}); // a missing binary: the wait below fails with the reason
  const stop = async () => {
    if (!exited) proc.kill('SIGTERM');
    await withTimeout(exitP, STEP_MS, 'redis-server to stop').catch((e) => {
      proc.kill('SIGKILL');
      throw e;
    });
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await until(async () => {
      if (exited) throw new Error(`redis-server exited (${JSON.stringify(exited)}) before answering`);
      return redisPing(port);
    }, STEP_MS, `redis-server on port ${port} to answer PING`);
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return { port, url: `redis://127.0.0.1:${port}`, stop };
}

/**
 * n instances of overcookied sharing redisUrl, one SQLite file and the
 * token secret, each on its own free port, each accepting every instance's
 * page as a WebSocket Origin (a MOVE sends a page to another instance).
 * Returns {servers: [{base, port, stop(), log()}], stop()}: stop() stops
 * them all and returns their exits. extra: flags for every instance, or a
 * function of the instance's index (from 0) returning its flags.
 */
export async function startCluster(binary, webDir, redisUrl, n, extra = []) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oc-cluster-'));
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const origins = ports.flatMap((p) => ['--allowed-origin', `http://127.0.0.1:${p}`]);
  const servers = [];
  const stopAll = async () => {
    const exits = [];
    for (const s of servers) exits.push(await s.stop().catch((e) => ({ code: null, error: e.message })));
    fs.rmSync(tmp, { recursive: true, force: true });
    return exits;
  };
  try {
    for (let i = 0; i < n; i++) {
      const s = await startServer(binary, webDir,
        ['--redis', redisUrl, '--instance-id', `i${i + 1}`, ...origins,
          ...(typeof extra === 'function' ? extra(i) : extra)],
        { port: ports[i], db: path.join(tmp, 'cluster.db') });
      servers.push({ ...s, port: ports[i] });
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  return { servers, stop: stopAll };
}
