// Overcookied: the app. Screens, the session, the WebSocket and its
// reconnection, and the dispatch of every server message (PROTOCOL.md).

import * as api from './api.js';
import { Connection, moveUrl, CLOSE_REPLACED, CLOSE_MOVED, CLOSE_IDLE } from './connection.js';
import { $, h, setText, show, clock, announce, alertSr, toast, dismissToast } from './dom.js';
import { Game, loadSavedGame, forgetSavedGame } from './game.js';
import * as lobby from './lobby.js';

const RESUME_WAIT_MS = 2500;   // after reconnecting: how long to wait for GAME_START resumed
const GAME_RETRY_FOR_MS = 30000; // mid-game: keep trying to reconnect this long
const MOVE_HOPS_MAX = 3;       // PROTOCOL.md, Cluster: MOVEs followed in a row before giving up
const MOVE_CLOSE_WAIT_MS = 1500; // after MOVE: the server's 4001 close comes within this, or we close
const NAME_MAX = 24;

const TIPS = [
  'Tip: Space and Enter click the cookie too.',
  'Tip: golden cookies give 3 seconds of double points. Grab them with G.',
  'Tip: only about 30 clicks a second count. Rhythm beats mashing.',
  'Tip: on a phone, tap with two thumbs.',
  'Tip: the bar under the scores shows who is ahead.',
];

const app = {
  session: null,
  conn: null,
  screen: 'boot',
  game: null,
  wantQueue: false,
  queueSince: 0,
  queueTimer: 0,
  tipIndex: 0,
  retry: { timer: 0, attempts: 0, failed: 0, since: 0, tick: 0 },
  resumeTimer: 0,
  awaitingResume: false,
  lobbyGen: 0,
  lastResult: null,
  // Following MOVE (PROTOCOL.md, Cluster). `target`: where the next
  // connect() goes, set by MOVE and used once. `hops`: MOVEs followed in a
  // row; the row ends when a connection is answered otherwise (GAME_START,
  // QUEUED, GAME_OVER) or when a target cannot be reached (a drop: we go
  // back to this page's server, which sends us on again or says the game
  // is lost). `since`: when the first MOVE of the row came, 0 when none is
  // being followed; it bounds how long we try to reach the game.
  move: { target: '', roomId: '', hops: 0, since: 0, timer: 0 },
};

// ---- Screens ------------------------------------------------------------------------

const SCREENS = ['boot', 'login', 'lobby', 'queue', 'game', 'over', 'away'];
const FOCUS = { login: 'login-name', lobby: 'play', queue: 'queue-cancel', game: 'cookie', over: 'again', away: 'away-here' };
const TITLES = { login: 'Overcookied', lobby: 'Lobby · Overcookied', queue: 'Finding an opponent · Overcookied', game: 'Overcookied', over: 'Game over · Overcookied', away: 'Overcookied' };

function showScreen(name) {
  if (app.screen !== name) {
    for (const s of SCREENS) show(`screen-${s}`, s === name);
    app.screen = name;
    $('main').dataset.screen = name;
    document.title = TITLES[name] || 'Overcookied';
    const target = $(FOCUS[name]);
    if (target) requestAnimationFrame(() => target.focus({ preventScroll: true }));
  }
  if (name !== 'queue') stopQueueClock();
  if (name !== 'game' && $('quit-dialog').open) $('quit-dialog').close();
}

function setBootText(text) {
  setText(document.querySelector('#screen-boot p'), text);
}

// ---- Connection ----------------------------------------------------------------------

function setPill(state) {
  const pill = $('conn-pill');
  pill.dataset.state = state;
  setText(pill.querySelector('.pill-text'), { online: 'Online', offline: 'Reconnecting', connecting: 'Connecting' }[state]);
}

function connect() {
  if (!app.session) return;
  if (app.conn && (app.conn.isOpen || app.conn.ws)) return;
  clearTimeout(app.retry.timer);
  app.retry.timer = 0;
  const target = app.move.target;
  app.move.target = '';
  const conn = new Connection(app.session.token, {
    onOpen: () => onOpen(conn),
    onMessage: (type, payload) => { if (app.conn === conn) onMessage(type, payload); },
    onClose: (info) => { if (app.conn === conn) onClose(info, conn); },
  }, target);
  app.conn = conn;
  if (app.screen === 'lobby' || app.screen === 'over') setPill('connecting');
  conn.open();
}

function disconnect() {
  clearTimeout(app.retry.timer);
  clearInterval(app.retry.tick);
  app.retry = { timer: 0, attempts: 0, failed: 0, since: 0, tick: 0 };
  forgetMove();
  if (app.conn) app.conn.close();
  app.conn = null;
}

function send(type, payload) {
  return app.conn ? app.conn.send(type, payload) : false;
}

function onOpen(conn) {
  const wasRetrying = app.retry.since !== 0;
  clearInterval(app.retry.tick);
  app.retry = { timer: 0, attempts: 0, failed: 0, since: 0, tick: 0 };
  setPill('online');
  if (app.game && app.game.phase !== 'over' && (app.screen === 'game' || app.screen === 'boot')) {
    // Mid-game: the server sends GAME_START with resumed:true if the game is
    // still on. If not, it ended while we were away.
    if (wasRetrying) banner('Reconnected. Rejoining your game…', '');
    waitForResume();
  } else if (conn.url || app.move.since || (app.screen === 'boot' && app.awaitingResume)) {
    // On the way to a game (where a MOVE sent us, or back on this page's
    // server after its target could not be reached): it resumes us
    // (GAME_START), sends us on (MOVE) or says how it ended (GAME_OVER);
    // silence means it is over.
    waitForResume();
  }
  if (app.wantQueue) send('JOIN_QUEUE');
}

function onClose({ code, opened }, conn) {
  app.conn = null;
  if (app.move.target) {
    // After MOVE: this close (4001 "moved") is expected; go at once.
    clearTimeout(app.move.timer);
    connect();
    return;
  }
  if (conn.url && !opened) {
    // The MOVE target cannot be reached: a dropped connection, so this
    // page's own server next (below), and the MOVE row is broken. That
    // server may send us there again until the target's lease lapses:
    // once a second, not at the first retry's pace.
    app.move.hops = 0;
    app.retry.attempts = Math.max(app.retry.attempts, 1);
  }
  if (code === CLOSE_MOVED && app.move.hops > MOVE_HOPS_MAX) {
    // We stopped following MOVEs: wait for the player, as after idling.
    setPill('offline');
    reconnectOnActivity();
    return;
  }
  if (code === CLOSE_REPLACED) {
    // Another tab or window took over this player.
    app.wantQueue = false;
    forgetMove();
    clearTimeout(app.resumeTimer);
    hideBanner();
    if (app.game && app.game.phase !== 'over') app.game.stop();
    app.game = null;
    showScreen('away');
    return;
  }
  if (code === CLOSE_IDLE) {
    // The server closes a lobby connection nobody uses: come back when the
    // player does something, not in a loop (Play connects by itself).
    setPill('offline');
    reconnectOnActivity();
    return;
  }
  // Everything else is a drop, CLOSE_SERVER_LOST (1012) included: that
  // instance lost its lease, and the one we reach next (this page's own)
  // tells us how the game ended (GAME_OVER server_lost). So is 1013 on
  // coming back: the game's server cannot vouch for it just now.
  if (!opened) app.retry.failed += 1;
  if (app.retry.failed >= 2 && app.retry.failed % 2 === 0) checkToken();
  setPill('offline');
  const inGame = app.game && app.game.phase !== 'over' && app.screen === 'game';
  if (!inGame && app.move.since) {
    // On the way to a game another server runs (MOVE from the queue).
    if (Date.now() - app.move.since > GAME_RETRY_FOR_MS) {
      forgetMove();
      enterLobby({ notice: 'We could not reach the server running your game. Try again in a moment.', tone: 'error' });
    } else {
      scheduleReconnect(app.retry.attempts === 0 ? 200 : 1000);
    }
    return;
  }
  if (inGame) {
    app.game.setConnected(false);
    dismissToast('resume');
    if (!app.retry.since) {
      app.retry.since = Date.now();
      alertSr('Connection lost. Reconnecting.');
      app.retry.tick = setInterval(updateReconnectBanner, 250);
      updateReconnectBanner();
    }
    const since = app.move.since ? Math.min(app.retry.since, app.move.since) : app.retry.since;
    if (Date.now() - since > GAME_RETRY_FOR_MS) {
      giveUpGame();
      return;
    }
    scheduleReconnect(app.retry.attempts === 0 ? 200 : 1000);
  } else {
    if (!app.retry.since) app.retry.since = Date.now();
    const delay = Math.min(10000, 500 * 2 ** Math.min(app.retry.attempts, 5));
    scheduleReconnect(delay);
  }
}

function reconnectOnActivity() {
  const events = ['pointerdown', 'keydown', 'focus'];
  const again = () => {
    if (document.visibilityState !== 'visible') return;
    for (const e of events) window.removeEventListener(e, again, true);
    document.removeEventListener('visibilitychange', again);
    connect();
  };
  for (const e of events) window.addEventListener(e, again, true);
  document.addEventListener('visibilitychange', again);
}

function scheduleReconnect(delay) {
  clearTimeout(app.retry.timer);
  app.retry.attempts += 1;
  app.retry.timer = setTimeout(connect, delay);
}

function updateReconnectBanner() {
  if (!app.retry.since) return;
  const s = Math.floor((Date.now() - app.retry.since) / 1000);
  banner(s < 1 ? 'Connection lost. Reconnecting…' : `Connection lost. Reconnecting… ${s}s`, '');
}

function banner(text, tone) {
  const b = $('reconnect-banner');
  setText('reconnect-text', text);
  if (tone) b.dataset.tone = tone;
  else delete b.dataset.tone;
  show(b, true);
}

function hideBanner() {
  show('reconnect-banner', false);
}

function waitForResume() {
  app.resuming = true; // until GAME_START, MOVE or GAME_OVER says how
  clearTimeout(app.resumeTimer);
  app.resumeTimer = setTimeout(gameEndedWhileAway, RESUME_WAIT_MS);
}

// ---- MOVE: the game is on another server (PROTOCOL.md, Cluster) -----------------------

function forgetMove() {
  clearTimeout(app.move.timer);
  app.move = { target: '', roomId: '', hops: 0, since: 0, timer: 0 };
}

/** An answer that is not MOVE ends a row of MOVEs. */
function moveRowEnded() {
  if (app.move.hops || app.move.since) forgetMove();
}

function onMove(p) {
  clearTimeout(app.resumeTimer);
  app.wantQueue = false; // matched, or in a game already: no JOIN_QUEUE where we go
  app.move.hops += 1;
  if (app.move.hops > MOVE_HOPS_MAX) {
    tooManyMoves();
    return;
  }
  const url = moveUrl(p.url ?? '', app.session.token);
  if (!url) {
    // Not somewhere we can go: the close that follows is a drop.
    console.warn('overcookied: ignoring a MOVE without a ws:// URL');
    return;
  }
  app.move.target = url;
  app.move.roomId = String(p.roomId ?? '');
  if (!app.move.since) app.move.since = Date.now();
  showJoining();
  // The server closes this connection (4001) once MOVE is out, and onClose
  // goes on; if that close does not come, do not wait for it.
  const conn = app.conn;
  clearTimeout(app.move.timer);
  app.move.timer = setTimeout(() => {
    if (app.conn !== conn || !app.move.target) return;
    conn.close();
    app.conn = null;
    connect();
  }, MOVE_CLOSE_WAIT_MS);
}

/** The short "connecting" state while we go to the game's server. */
function showJoining() {
  if (app.screen === 'queue') {
    stopQueueClock();
    setText('queue-status', 'Opponent found! Connecting to your game');
    announce('Opponent found. Connecting to your game.');
  } else if (app.screen === 'game') {
    if (!$('reconnect-banner').hidden) banner('Rejoining your game…', '');
  } else if (app.screen === 'lobby' || app.screen === 'over') {
    setPill('connecting');
  }
}

/** A MOVE answered on each new connection, MOVE_HOPS_MAX times: stop. */
function tooManyMoves() {
  console.warn(`overcookied: more than ${MOVE_HOPS_MAX} MOVEs in a row; not following`);
  app.move.target = '';
  app.move.since = 0;
  clearTimeout(app.move.timer);
  app.awaitingResume = false;
  const text = 'We could not connect you to your game: the game servers kept sending us elsewhere. Try again in a moment.';
  if (app.game && app.game.phase !== 'over') {
    clearInterval(app.retry.tick);
    const game = app.game;
    const last = { myScore: game.score.me, oppScore: game.score.opp, myName: game.me.name, oppName: game.opp.name, roomId: game.roomId };
    game.stop();
    app.game = null;
    hideBanner();
    showOver({ ...last, result: 'unknown', reason: 'lost_connection' }, text);
  } else {
    forgetSavedGame();
    enterLobby({ notice: text, tone: 'error' });
  }
}

async function checkToken() {
  if (!app.session) return;
  try {
    await api.history(app.session.token, 1);
  } catch (e) {
    if (e.status === 401) logout('Your session expired. Pick a name to play again.');
  }
}

/** Could not get back in time: the game is lost. */
function giveUpGame() {
  clearInterval(app.retry.tick);
  forgetMove();
  const game = app.game;
  const last = game ? { myScore: game.score.me, oppScore: game.score.opp, myName: game.me.name, oppName: game.opp.name, roomId: game.roomId } : {};
  if (game) game.stop();
  app.game = null;
  hideBanner();
  showOver({ ...last, result: 'unknown', reason: 'lost_connection' },
    'We could not reconnect to the server in time, so the game went on without you.');
  // Keep trying quietly in the background for the lobby.
  app.retry = { timer: 0, attempts: 0, failed: 0, since: Date.now(), tick: 0 };
  scheduleReconnect(2000);
}

/** Back online but no GAME_START resumed: the game ended meanwhile. */
async function gameEndedWhileAway() {
  app.awaitingResume = false;
  app.resuming = false;
  const game = app.game;
  const saved = app.session ? loadSavedGame(app.session.userId) : null;
  const movedTo = app.move.roomId;
  forgetMove();
  const roomId = game ? game.roomId : saved ? saved.roomId : movedTo;
  const last = game ? { myScore: game.score.me, oppScore: game.score.opp, myName: game.me.name, oppName: game.opp.name } : {};
  if (game) game.stop();
  app.game = null;
  forgetSavedGame();
  hideBanner();
  let found = null;
  if (roomId && app.session) {
    try {
      const hist = await api.history(app.session.token, 10);
      // A room id is only unique within one server run: a match must also
      // be recent.
      const recent = Date.now() / 1000 - 15 * 60;
      found = hist.games.find((g) => g.gameId === roomId && Number(g.timestamp) > recent) || null;
    } catch {
      found = null;
    }
  }
  if (found) {
    showOver({
      result: lobby.resultOf(found) === 'void' ? 'unknown' : lobby.resultOf(found),
      reason: found.reason,
      myScore: Number(found.score) || 0,
      oppScore: Number(found.opponentScore) || 0,
      myName: app.session.name,
      oppName: String(found.opponentName ?? 'Opponent'),
      roomId,
    }, 'This game ended while you were disconnected.');
  } else if (game) {
    showOver({ ...last, result: 'unknown', reason: 'lost_connection', roomId },
      'The game ended while you were disconnected.');
  } else if (movedTo) {
    enterLobby({ notice: 'Your game could not be joined. Try again in a moment.', tone: 'error' });
  } else {
    enterLobby();
  }
}

// ---- Server messages ---------------------------------------------------------------------

function onMessage(type, p) {
  switch (type) {
    case 'QUEUED':
      moveRowEnded();
      if (app.screen !== 'queue') enterQueue(false);
      setText('queue-status', 'Waiting for another baker');
      announce('You are in the queue. Waiting for an opponent.');
      return;
    case 'GAME_START':
      onGameStart(p);
      return;
    case 'UPDATE':
      app.game?.update(p);
      return;
    case 'OPPONENT_CLICK':
      app.game?.opponentClick(p);
      return;
    case 'COOKIE_SPAWN':
      app.game?.cookieSpawn(p);
      return;
    case 'GAME_OVER':
      onGameOver(p);
      return;
    case 'ERROR':
      onError(p);
      return;
    case 'MOVE':
      onMove(p);
      return;
    default:
      // A newer server may send more; this client ignores what it does not know.
      console.info(`overcookied: ignoring message type ${JSON.stringify(type)}`);
  }
}

function onGameStart(p) {
  app.wantQueue = false;
  app.awaitingResume = false;
  app.resuming = false;
  clearTimeout(app.resumeTimer);
  clearInterval(app.retry.tick);
  const resumed = p.resumed === true;
  const fresh = !app.game || app.game.roomId !== String(p.roomId ?? '');
  // Matched across servers: the game's server resumes us (resumed:true)
  // into a game this page has not shown yet. To the player it is a start.
  const saved = loadSavedGame(app.session.userId);
  const movedIn = resumed && fresh && app.move.since !== 0 && (!saved || saved.roomId !== String(p.roomId ?? ''));
  moveRowEnded();
  if (fresh || !resumed) {
    if (app.game) app.game.stop();
    app.game = new Game({ send, me: app.session });
  }
  app.game.setConnected(true);
  app.game.start(p, { movedIn });
  showScreen('game');
  if (resumed && !$('reconnect-banner').hidden) {
    banner('Back in the game!', 'ok');
    setTimeout(() => { if ($('reconnect-banner').dataset.tone === 'ok') hideBanner(); }, 1500);
  } else {
    hideBanner();
  }
}

function onGameOver(p) {
  const expected = app.move.since !== 0 || app.awaitingResume || app.resuming === true;
  moveRowEnded();
  const lost = String(p.reason ?? '') === 'server_lost';
  if (lost && !app.game) {
    serverLostWithoutGame(expected);
    return;
  }
  if (expected && !lost) {
    // Back (or moved) while the game was already over: the server says so
    // at once. The stored result, from history, names both players'
    // scores as this page knew them, as when the server says nothing.
    clearTimeout(app.resumeTimer);
    gameEndedWhileAway();
    return;
  }
  if (!app.game) return; // not ours to show (e.g. a game we already left)
  clearTimeout(app.resumeTimer);
  const r = app.game.over(p);
  app.game = null;
  hideBanner();
  showOver(r);
}

/**
 * GAME_OVER server_lost for a game this page is not showing: told once by
 * the server, on the first connection after the game's server stopped.
 */
function serverLostWithoutGame(expected) {
  clearTimeout(app.resumeTimer);
  const text = 'The server running your game stopped. The game does not count.';
  if (expected || app.screen === 'boot') {
    app.awaitingResume = false;
    app.wantQueue = false;
    forgetSavedGame();
    hideBanner();
    showOver({ result: 'unknown', reason: 'server_lost', myName: app.session?.name });
  } else if (app.screen === 'lobby') {
    enterLobby({ notice: text, tone: 'error' });
  } else {
    toast(text, { tone: 'error' });
  }
}

function onError(p) {
  const code = String(p.code ?? '');
  const message = String(p.message ?? '');
  switch (code) {
    case 'rate_limited':
      toast('Easy, speedy! Only 30 clicks a second count.', { key: 'rate', ms: 2000 });
      return;
    case 'not_in_game':
      // A click or quit that crossed the end of a game: nothing to do.
      console.info('overcookied: the server says we are not in a game');
      return;
    case 'queue_full':
    case 'server_full':
    case 'busy':
      if (app.screen === 'queue') {
        app.wantQueue = false;
        enterLobby({ notice: code === 'busy' ? 'The kitchen is busy right now. Try again in a moment.' : 'All ovens are full right now. Try again in a moment.', tone: 'error' });
      } else {
        toast(message || 'The server is busy. Try again in a moment.', { tone: 'error' });
      }
      return;
    case 'matchmaking_unavailable':
      // Clustered, and this server cannot reach the shared queue: nothing
      // is queued; the player may try again (Play).
      app.wantQueue = false;
      if (app.screen === 'queue') {
        enterLobby({ notice: 'Matchmaking is unavailable right now. Try again in a moment.', tone: 'error' });
      } else {
        toast('Matchmaking is unavailable right now. Try again in a moment.', { tone: 'error', key: 'mm' });
      }
      return;
    case 'bad_json':
    case 'unknown_type':
      console.warn(`overcookied: the server did not understand a message (${code})`);
      return;
    default:
      if (message) toast(message, { tone: 'error' });
  }
}

// ---- Login ---------------------------------------------------------------------------------

function showLogin(message) {
  disconnect();
  app.game?.stop();
  app.game = null;
  showScreen('login');
  const err = $('login-error');
  if (message) {
    setText(err, message);
    show(err, true);
  } else {
    show(err, false);
  }
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  const input = $('login-name');
  const err = $('login-error');
  const btn = $('login-submit');
  const name = input.value.trim();
  const problem = !name ? 'Type a name first: anything from 1 to 24 characters.'
    : [...name].length > NAME_MAX ? `That name is too long: at most ${NAME_MAX} characters.`
      : '';
  if (problem) {
    fail(problem);
    return;
  }
  btn.disabled = true;
  setText(btn.querySelector('.btn-label'), 'Preheating…');
  show(err, false);
  input.removeAttribute('aria-invalid');
  try {
    const s = await api.login(name);
    app.session = s;
    api.saveSession(s);
    input.value = '';
    connect();
    enterLobby();
  } catch (e) {
    fail(e.status === 400 ? `The server did not accept that name: ${e.message}.` : e.message);
  } finally {
    btn.disabled = false;
    setText(btn.querySelector('.btn-label'), 'Start baking');
  }

  function fail(text) {
    setText(err, text);
    show(err, false);
    void err.offsetWidth; // replay the shake
    show(err, true);
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}

function logout(message) {
  if (app.wantQueue) send('LEAVE_QUEUE');
  app.wantQueue = false;
  app.session = null;
  api.clearSession();
  forgetSavedGame();
  showLogin(message);
}

// ---- Lobby -----------------------------------------------------------------------------------

function enterLobby({ notice = '', tone = '' } = {}) {
  showScreen('lobby');
  setText('lobby-name', app.session.name);
  setText('lobby-greeting', app.session.name);
  const n = $('lobby-notice');
  setText(n, notice);
  if (tone) n.dataset.tone = tone;
  else delete n.dataset.tone;
  show(n, !!notice);
  setPill(app.conn && app.conn.isOpen ? 'online' : app.retry.since ? 'offline' : 'connecting');
  connect();
  refreshLobby();
}

async function refreshLobby() {
  const gen = ++app.lobbyGen;
  const session = app.session;
  if (!session) return;
  lobby.boardLoading();
  lobby.historyLoading();
  const [board, hist] = await Promise.allSettled([api.leaderboard(10), api.history(session.token, 100)]);
  if (gen !== app.lobbyGen || app.session !== session) return;
  if (board.status === 'fulfilled') lobby.renderBoard(board.value, session.name);
  else lobby.boardFailed(board.reason.message, refreshLobby);
  if (hist.status === 'fulfilled') {
    lobby.renderHistory(hist.value);
  } else if (hist.reason.status === 401) {
    logout('Your session expired. Pick a name to play again.');
  } else {
    lobby.historyFailed(hist.reason.message, refreshLobby);
  }
}

// ---- Matchmaking ----------------------------------------------------------------------------

function enterQueue(sendJoin = true) {
  // Play is the player's say-so: a new row of MOVEs may start.
  if (sendJoin && !app.move.target) forgetMove();
  app.wantQueue = true;
  app.queueSince = Date.now();
  setText('queue-status', sendJoin ? 'Joining the queue' : 'Waiting for another baker');
  showScreen('queue');
  startQueueClock();
  if (sendJoin) {
    if (!send('JOIN_QUEUE')) connect(); // onOpen sends it
  }
}

function startQueueClock() {
  stopQueueClock();
  app.tipIndex = Math.floor(Math.random() * TIPS.length);
  setText('queue-tip', TIPS[app.tipIndex]);
  setText('queue-elapsed', '0:00');
  app.queueTimer = setInterval(() => {
    const s = Math.floor((Date.now() - app.queueSince) / 1000);
    setText('queue-elapsed', clock(s));
    if (s > 0 && s % 5 === 0) {
      app.tipIndex = (app.tipIndex + 1) % TIPS.length;
      setText('queue-tip', TIPS[app.tipIndex]);
    }
  }, 1000);
}

function stopQueueClock() {
  clearInterval(app.queueTimer);
  app.queueTimer = 0;
}

function cancelQueue() {
  app.wantQueue = false;
  send('LEAVE_QUEUE');
  enterLobby();
}

// ---- Game over ------------------------------------------------------------------------------

const TITLES_OVER = { win: 'You win!', loss: 'You lose', draw: 'It’s a draw!', unknown: 'Game over' };

function overReason(r) {
  const opp = r.oppName || 'Your opponent';
  switch (r.reason) {
    case 'time': {
      const by = Math.abs((r.myScore ?? 0) - (r.oppScore ?? 0));
      const pts = by === 1 ? 'point' : 'points';
      if (r.result === 'draw') return 'Time’s up, and the scores are level.';
      return r.result === 'win' ? `Time’s up! You won by ${by} ${pts}.` : `Time’s up! ${opp} won by ${by} ${pts}.`;
    }
    case 'quit':
      return r.result === 'win' ? `${opp} quit the game.` : 'You quit the game.';
    case 'opponent_disconnected':
      return r.result === 'win' ? `${opp} disconnected and did not come back in time.` : 'You were disconnected for too long.';
    case 'lost_connection':
      return 'Connection lost.';
    case 'server_lost':
      return 'The server running your game stopped. The game does not count.';
    default:
      return r.reason ? `The game ended (${r.reason}).` : 'The game ended.';
  }
}

function showOver(r, note = '') {
  app.lastResult = r;
  const card = $('over-card');
  card.dataset.result = r.result;
  setText('over-title', TITLES_OVER[r.result] || 'Game over');
  setText('over-kicker', r.result === 'win' ? 'Sweet victory' : r.result === 'loss' ? 'Crumbs!' : 'Game over');
  setText('over-reason', overReason(r));
  setText('over-me-name', r.myName || app.session?.name || 'You');
  setText('over-opp-name', r.oppName || 'Opponent');
  setText('over-me-score', r.myScore ?? 0);
  setText('over-opp-score', r.oppScore ?? 0);
  document.querySelector('.final-player.me').classList.toggle('winner', r.result === 'win');
  document.querySelector('.final-player.opp').classList.toggle('winner', r.result === 'loss');
  $('over-icon').querySelector('use').setAttribute('href', r.result === 'win' ? '#sym-golden' : '#sym-cookie');
  const n = $('over-note');
  setText(n, note);
  show(n, !!note);
  const crumbs = card.querySelector('.crumbs');
  while (crumbs.firstChild) crumbs.removeChild(crumbs.firstChild);
  if (r.result === 'win') rainCrumbs(crumbs);
  showScreen('over');
  document.title = `${TITLES_OVER[r.result] || 'Game over'} ${r.myScore ?? 0}–${r.oppScore ?? 0} · Overcookied`;
  alertSr(`${TITLES_OVER[r.result] || 'Game over'} ${overReason(r)} You ${r.myScore ?? 0}, ${r.oppName || 'opponent'} ${r.oppScore ?? 0}.`);
}

function rainCrumbs(box) {
  if (matchMedia('(prefers-reduced-motion: reduce)').matches) return;
  const colors = ['#ffc93c', '#f4a62a', '#c8843c', '#7a4a24', '#ffe07a'];
  for (let i = 0; i < 36; i++) {
    const el = h('i');
    el.style.left = `${Math.random() * 100}%`;
    el.style.background = colors[i % colors.length];
    el.style.animationDuration = `${1.8 + Math.random() * 1.8}s`;
    el.style.animationDelay = `${Math.random() * 0.8}s`;
    el.style.borderRadius = i % 3 === 0 ? '50%' : '3px';
    box.appendChild(el);
  }
}

// ---- Input ----------------------------------------------------------------------------------

function wireInput() {
  $('login-form').addEventListener('submit', onLoginSubmit);
  $('logout').addEventListener('click', () => logout(''));
  $('play').addEventListener('click', () => enterQueue(true));
  $('board-refresh').addEventListener('click', refreshLobby);
  $('queue-cancel').addEventListener('click', cancelQueue);
  $('again').addEventListener('click', () => enterQueue(true));
  $('to-lobby').addEventListener('click', () => enterLobby());
  $('away-here').addEventListener('click', () => {
    connect();
    enterLobby();
  });

  // The big cookie: pointers score on press (fast, multi-touch), keyboards
  // through the global handler below; a click with detail 0 comes from
  // assistive technology and scores too.
  const cookie = $('cookie');
  let lastKeyAt = 0;
  cookie.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !app.game) return;
    e.preventDefault();
    const area = $('play-area').getBoundingClientRect();
    app.game.click(e.clientX - area.left, e.clientY - area.top);
  });
  cookie.addEventListener('click', (e) => {
    if (e.detail === 0 && app.game && performance.now() - lastKeyAt > 80) app.game.click();
  });
  $('play-area').addEventListener('contextmenu', (e) => e.preventDefault());

  const golden = $('golden');
  golden.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    app.game?.claimGolden();
  });
  golden.addEventListener('click', (e) => {
    if (e.detail === 0) app.game?.claimGolden();
  });

  document.addEventListener('keydown', (e) => {
    if (app.screen !== 'game' || !app.game || $('quit-dialog').open) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (e.key === ' ' || e.key === 'Enter' || e.key === 'Spacebar') {
      // Other buttons (Quit, the golden cookie) keep their own meaning.
      if (t instanceof HTMLButtonElement && t.id !== 'cookie') return;
      e.preventDefault();
      if (e.repeat) return; // holding the key is not clicking
      lastKeyAt = performance.now();
      app.game.click();
    } else if ((e.key === 'g' || e.key === 'G') && !e.repeat) {
      app.game.claimGolden();
    }
  });

  const dialog = $('quit-dialog');
  $('quit').addEventListener('click', () => {
    if (!app.game) return;
    dialog.returnValue = '';
    dialog.showModal();
  });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'quit' || !app.game) {
      if (app.screen === 'game') $('cookie').focus({ preventScroll: true });
      return;
    }
    if (!send('QUIT_GAME')) toast('Not connected right now: cannot quit yet.', { tone: 'error' });
  });
}

// ---- Start ------------------------------------------------------------------------------------

function boot() {
  wireInput();
  app.session = api.loadSession();
  if (!app.session) {
    api.clearSession();
    showLogin('');
    return;
  }
  if (loadSavedGame(app.session.userId)) {
    // A reload mid-game: wait briefly for the server to resume it.
    app.awaitingResume = true;
    setBootText('Rejoining your game…');
    connect();
    // The server answers at once when it can; if it cannot be reached, go
    // on to the lobby (which keeps reconnecting) instead of waiting here.
    setTimeout(() => {
      if (app.screen === 'boot' && app.awaitingResume) gameEndedWhileAway();
    }, 6000);
    return;
  }
  connect();
  enterLobby();
}

window.addEventListener('pagehide', () => {
  // Leaving the page: close cleanly so the server starts the grace at once.
  if (app.conn) app.conn.close();
  app.conn = null;
});
window.addEventListener('pageshow', (e) => {
  // Back from the back/forward cache: the connection was closed on the way out.
  if (e.persisted && app.session && app.screen !== 'login' && app.screen !== 'away') connect();
});

boot();
