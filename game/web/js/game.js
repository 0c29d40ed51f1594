// The game screen: one match, from GAME_START to GAME_OVER.
//
// The server is the authority on every number: scores come from UPDATE
// messages, and the +1/+2 that floats up after a click is the difference
// between two acknowledgements of our own clicks (CLICK carries a `seq`, its
// UPDATE echoes it), so a click that did not count (countdown, rate limit)
// shows nothing.

import { $, h, setText, show, clock, announce, alertSr, toast } from './dom.js';

const DEFAULT_COUNTDOWN_MS = 5000; // PROTOCOL.md: countdown 5 s
const DEFAULT_GAME_SECONDS = 60;
const BONUS_MS = 3000; // PROTOCOL.md: golden bonus 3 s
const MAX_FX = 90;
const SAVED_KEY = 'overcookied.game';

const num = (v, d = 0) => (Number.isFinite(Number(v)) ? Number(v) : d);
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

// ---- The game in progress, kept so a reload can pick up the countdown ---------------

export function loadSavedGame(userId) {
  try {
    const s = JSON.parse(localStorage.getItem(SAVED_KEY) || 'null');
    if (!s || s.userId !== userId || typeof s.roomId !== 'string') return null;
    // A game lasts a minute or so; anything much older is stale.
    if (Date.now() - num(s.savedAt) > (num(s.total, 60) + 120) * 1000) return null;
    return s;
  } catch {
    return null;
  }
}

function saveGame(s) {
  try {
    localStorage.setItem(SAVED_KEY, JSON.stringify({ ...s, savedAt: Date.now() }));
  } catch {
    // no storage: a reload will simply not know the countdown
  }
}

export function forgetSavedGame() {
  try {
    localStorage.removeItem(SAVED_KEY);
  } catch {
    // nothing stored
  }
}

// ---- The view ---------------------------------------------------------------------

export class Game {
  /**
   * @param {{send: (type: string, payload?: object) => boolean, me: {userId: string, name: string}}} opts
   */
  constructor({ send, me }) {
    this.send = send;
    this.me = { id: me.userId, name: me.name };
    this.opp = { id: '', name: 'Opponent' };
    this.roomId = '';
    this.role = 'p1';
    this.score = { me: 0, opp: 0 };
    this.ackScore = 0;
    this.total = DEFAULT_GAME_SECONDS;
    this.time = DEFAULT_GAME_SECONDS;
    this.phase = 'countdown';
    this.countdownEndsAt = 0;
    this.countdownShown = null;
    this.seq = 0;
    this.pending = new Map(); // seq -> {x, y, at}
    this.rtt = 0;
    this.bonus = { until: 0, who: '', timer: 0, anim: null };
    this.goldenVisible = false;
    this.timers = new Set();
    this.lastAnnounced = -1;
    this.connected = true;
    this.el = {
      cookie: $('cookie'),
      golden: $('golden'),
      area: $('play-area'),
      fx: $('fx'),
      countdown: $('countdown'),
      meScore: $('me-score'),
      oppScore: $('opp-score'),
      hudMe: $('hud-me'),
      hudOpp: $('hud-opp'),
      timer: $('timer'),
      clock: document.querySelector('.clock'),
      timebar: $('timebar-fill'),
      lead: $('lead-fill'),
      bonus: $('bonus'),
      bonusFill: $('bonus-fill'),
      bonusLabel: $('bonus-label'),
      rtt: $('rtt'),
    };
  }

  // ---- Messages ------------------------------------------------------------------

  /**
   * GAME_START, fresh or resumed. movedIn: the first GAME_START of a game
   * matched across servers, which the game's server sends as a resume (the
   * player arrives there after MOVE); during the countdown it is a start.
   */
  start(p, { movedIn = false } = {}) {
    const resumed = p.resumed === true && !(movedIn && typeof p.countdown === 'number' && p.countdown > 0);
    clearInterval(this.countdownTimer);
    this.roomId = String(p.roomId ?? '');
    this.role = p.role === 'p2' ? 'p2' : 'p1';
    const p1Name = String(p.p1Name ?? ''), p2Name = String(p.p2Name ?? '');
    this.me.name = (this.role === 'p1' ? p1Name : p2Name) || this.me.name;
    this.opp = { id: String(p.opponent ?? ''), name: (this.role === 'p1' ? p2Name : p1Name) || 'Opponent' };
    this.time = num(p.timeRemaining, DEFAULT_GAME_SECONDS);
    this.setScores(p, false);
    this.ackScore = this.score.me;
    this.pending.clear();

    const saved = loadSavedGame(this.me.id);
    // "countdown": seconds left before the first counted second (a v1
    // addition of this server; 0 once the game runs). Without it, assume
    // the default and learn the real start from the first tick.
    const hasCountdown = typeof p.countdown === 'number' && p.countdown >= 0;
    if (!resumed) {
      this.total = this.time;
      const cd = hasCountdown ? p.countdown : DEFAULT_COUNTDOWN_MS / 1000;
      this.countdownEndsAt = cd > 0 ? Date.now() + cd * 1000 : 0;
    } else if (hasCountdown) {
      this.total = saved && saved.roomId === this.roomId
        ? num(saved.total, Math.max(this.time, DEFAULT_GAME_SECONDS))
        : Math.max(this.time, DEFAULT_GAME_SECONDS);
      this.countdownEndsAt = p.countdown > 0 ? Date.now() + p.countdown * 1000 : 0;
    } else if (saved && saved.roomId === this.roomId) {
      this.total = num(saved.total, Math.max(this.time, DEFAULT_GAME_SECONDS));
      this.countdownEndsAt = this.time >= this.total ? num(saved.countdownEndsAt) : 0;
    } else {
      this.total = Math.max(this.time, DEFAULT_GAME_SECONDS);
      this.countdownEndsAt = 0;
    }
    saveGame({ userId: this.me.id, roomId: this.roomId, total: this.total, countdownEndsAt: this.countdownEndsAt });

    setText('me-name', this.me.name);
    setText('opp-name', this.opp.name);
    this.el.hudMe.classList.remove('has-bonus');
    this.el.hudOpp.classList.remove('has-bonus');
    this.hideGolden();
    this.renderScores(false);
    this.renderTime();
    document.querySelector('#screen-game').dataset.roomId = this.roomId;

    if (this.countdownEndsAt > Date.now()) {
      this.phase = 'countdown';
      this.el.cookie.classList.add('waiting');
      this.runCountdown();
      if (!resumed) announce(`Matched with ${this.opp.name}. Get ready!`);
    } else {
      this.phase = 'running';
      show(this.el.countdown, false);
      this.el.cookie.classList.remove('waiting');
      if (movedIn) announce(`Matched with ${this.opp.name}. Go!`);
    }
    if (resumed && !movedIn) {
      toast('Welcome back! Your game goes on.', { tone: 'gold', key: 'resume' });
      alertSr(`Back in the game. You ${this.score.me}, ${this.opp.name} ${this.score.opp}.`);
    }
  }

  /** UPDATE: tick, click acknowledgement, or golden claim. */
  update(p) {
    if (this.phase === 'over') return;
    const hasScores = 'p1Score' in p || 'p2Score' in p;
    const before = { ...this.score };
    if (hasScores) this.setScores(p, true);

    if ('timeRemaining' in p) {
      this.time = num(p.timeRemaining, this.time);
      if (this.phase === 'countdown' && this.time < this.total) this.goLive();
      this.renderTime();
      this.maybeAnnounceScore();
    }
    if ('seq' in p && hasScores) this.acknowledge(num(p.seq, -1));
    if (typeof p.goldenCookieClaimedBy === 'string') this.goldenClaimed(p.goldenCookieClaimedBy);
    if (hasScores && (before.me !== this.score.me || before.opp !== this.score.opp)) {
      this.renderScores(true, before);
    }
  }

  opponentClick(p) {
    if (this.phase === 'over') return;
    if (this.phase === 'countdown') this.goLive(); // only scored clicks are echoed
    const points = clamp(Math.round(num(p.count, 1)), 1, 5);
    this.burstOpponent(points);
  }

  cookieSpawn(p) {
    if (this.phase === 'over') return;
    const x = clamp(num(p.x, 50), 0, 100);
    const y = clamp(num(p.y, 50), 0, 100);
    const g = this.el.golden;
    g.style.left = `${x}%`;
    g.style.top = `${y}%`;
    g.disabled = false;
    g.classList.remove('claiming');
    // Restart the entrance animation when a spawn moves an unclaimed cookie.
    show(g, false);
    void g.offsetWidth;
    show(g, true);
    this.goldenVisible = true;
    g.dataset.x = String(x);
    g.dataset.y = String(y);
    announce('A golden cookie appeared! Press G or click it for double points.');
  }

  /** GAME_OVER: returns what the game-over screen shows. */
  over(p) {
    this.stop();
    const reason = String(p.reason ?? '');
    // server_lost: the game's server stopped, the game does not count and
    // the scores it sends (if any) are not the game's: keep what we saw.
    if (reason !== 'server_lost') this.setScores(p, false);
    this.renderScores(false);
    const winner = String(p.winner ?? '');
    const result = winner === 'draw' ? 'draw'
      : winner === 'none' || reason === 'server_lost' ? 'unknown'
        : winner === this.me.id ? 'win' : 'loss';
    return {
      result,
      reason,
      myScore: this.score.me,
      oppScore: this.score.opp,
      myName: this.me.name,
      oppName: this.opp.name,
      roomId: this.roomId,
    };
  }

  /** The connection is down (or back): clicks go nowhere meanwhile. */
  setConnected(ok) {
    this.connected = ok;
    this.el.cookie.classList.toggle('waiting', !ok || this.phase === 'countdown');
  }

  stop() {
    this.phase = 'over';
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.countdownTimer);
    show(this.el.countdown, false);
    this.hideGolden();
    this.endBonus();
    this.el.cookie.classList.remove('waiting', 'doubled');
    this.el.clock.classList.remove('hurry');
    clear(this.el.fx);
    forgetSavedGame();
  }

  // ---- Input -------------------------------------------------------------------------

  /** A click on the big cookie at (x, y) in play-area pixels, or its centre. */
  click(x, y) {
    if (this.phase === 'over') return;
    const area = this.el.area.getBoundingClientRect();
    if (x === undefined) {
      const c = this.el.cookie.getBoundingClientRect();
      x = c.left - area.left + c.width / 2 + (Math.random() - 0.5) * c.width * 0.4;
      y = c.top - area.top + c.height / 2 + (Math.random() - 0.5) * c.height * 0.4;
    }
    this.squash();
    if (!this.connected) return;
    this.seq += 1;
    const seq = this.seq;
    if (this.send('CLICK', { count: 1, seq })) {
      this.pending.set(seq, { x, y, at: performance.now() });
      if (this.pending.size > 200) this.pending.delete(this.pending.keys().next().value);
      this.crumbs(x, y);
    }
  }

  claimGolden() {
    if (this.phase !== 'running' && this.phase !== 'countdown') return;
    if (!this.goldenVisible || this.el.golden.disabled) return;
    if (this.send('COOKIE_CLICK')) {
      this.el.golden.classList.add('claiming');
      this.el.golden.disabled = true;
    }
  }

  // ---- Internals ----------------------------------------------------------------------

  setScores(p, keep) {
    const mine = this.role === 'p1' ? p.p1Score : p.p2Score;
    const theirs = this.role === 'p1' ? p.p2Score : p.p1Score;
    this.score.me = num(mine, keep ? this.score.me : 0);
    this.score.opp = num(theirs, keep ? this.score.opp : 0);
  }

  acknowledge(seq) {
    const sent = this.pending.get(seq);
    // Acks arrive in order; older entries were dropped under backpressure.
    for (const k of this.pending.keys()) {
      if (k > seq) break;
      this.pending.delete(k);
    }
    if (sent) {
      const rtt = performance.now() - sent.at;
      this.rtt = this.rtt ? this.rtt * 0.8 + rtt * 0.2 : rtt;
      this.el.rtt.hidden = false;
      setText(this.el.rtt, `${Math.round(this.rtt)} ms`);
    }
    const delta = this.score.me - this.ackScore;
    this.ackScore = this.score.me;
    if (delta > 0) {
      if (this.phase === 'countdown') this.goLive();
      const area = this.el.area.getBoundingClientRect();
      const x = sent ? sent.x : area.width / 2;
      const y = sent ? sent.y : area.height / 2;
      this.floater(x, y, `+${delta}`, delta >= 2 ? 'x2' : '');
    }
  }

  goldenClaimed(by) {
    const area = this.el.area.getBoundingClientRect();
    const g = this.goldenVisible ? this.el.golden.getBoundingClientRect() : null;
    this.hideGolden();
    const mine = by === this.me.id;
    if (mine) {
      this.floater(
        g ? g.left - area.left + g.width / 2 : area.width / 2,
        g ? g.top - area.top + g.height / 2 : area.height / 3,
        'Double points!', 'claim');
      announce('You grabbed the golden cookie: double points for 3 seconds!');
    } else {
      announce(`${this.opp.name} grabbed the golden cookie: double points for them for 3 seconds.`);
    }
    this.startBonus(mine ? 'me' : 'opp');
  }

  startBonus(who) {
    this.endBonus();
    this.bonus.who = who;
    this.bonus.until = Date.now() + BONUS_MS;
    const b = this.el.bonus;
    b.dataset.who = who;
    setText(this.el.bonusLabel, who === 'me' ? 'Double points! ×2' : `${this.opp.name} has ×2`);
    show(b, true);
    (who === 'me' ? this.el.hudMe : this.el.hudOpp).classList.add('has-bonus');
    if (who === 'me') this.el.cookie.classList.add('doubled');
    this.bonus.anim = this.el.bonusFill.animate(
      [{ transform: 'scaleX(1)' }, { transform: 'scaleX(0)' }],
      { duration: BONUS_MS, easing: 'linear', fill: 'forwards' });
    this.bonus.timer = this.later(() => this.endBonus(), BONUS_MS);
  }

  endBonus() {
    clearTimeout(this.bonus.timer);
    this.bonus.anim?.cancel();
    this.bonus.anim = null;
    this.bonus.until = 0;
    show(this.el.bonus, false);
    this.el.hudMe.classList.remove('has-bonus');
    this.el.hudOpp.classList.remove('has-bonus');
    this.el.cookie.classList.remove('doubled');
  }

  hideGolden() {
    this.goldenVisible = false;
    show(this.el.golden, false);
  }

  runCountdown() {
    clearInterval(this.countdownTimer);
    show(this.el.countdown, true);
    this.countdownShown = null;
    const step = () => {
      const left = Math.ceil((this.countdownEndsAt - Date.now()) / 1000);
      if (left <= 0) {
        this.goLive();
        return;
      }
      if (left !== this.countdownShown) {
        this.countdownShown = left;
        this.showCountdown(String(left), false);
        if (left <= 5) announce(String(left));
      }
    };
    step();
    this.countdownTimer = setInterval(step, 100);
  }

  showCountdown(text, go) {
    const box = this.el.countdown;
    clear(box);
    box.appendChild(h('div', { class: 'count-box' },
      h('span', { id: 'countdown-num', class: go ? 'count-num go' : 'count-num' }, text),
      h('span', { class: 'count-sub' }, go ? 'Click, click, click!' : `Get ready to bake against ${this.opp.name}`)));
  }

  goLive() {
    if (this.phase !== 'countdown') return;
    this.phase = 'running';
    clearInterval(this.countdownTimer);
    this.el.cookie.classList.toggle('waiting', !this.connected);
    this.showCountdown('GO!', true);
    announce('Go! Click the cookie!');
    this.later(() => show(this.el.countdown, false), 700);
    // The real countdown may have ended earlier than ours: drop the saved end.
    saveGame({ userId: this.me.id, roomId: this.roomId, total: this.total, countdownEndsAt: 0 });
  }

  renderScores(animate, before) {
    setText(this.el.meScore, this.score.me);
    setText(this.el.oppScore, this.score.opp);
    if (animate && before) {
      if (before.me !== this.score.me) this.bump(this.el.meScore);
      if (before.opp !== this.score.opp) this.bump(this.el.oppScore);
    }
    const sum = this.score.me + this.score.opp;
    this.el.lead.style.width = `${sum > 0 ? (this.score.me / sum) * 100 : 50}%`;
    this.el.hudMe.classList.toggle('leading', this.score.me > this.score.opp);
    this.el.hudOpp.classList.toggle('leading', this.score.opp > this.score.me);
    document.title = `${this.score.me}–${this.score.opp} · Overcookied`;
  }

  renderTime() {
    setText(this.el.timer, clock(this.time));
    const frac = this.total > 0 ? clamp(this.time / this.total, 0, 1) : 1;
    this.el.timebar.style.transform = `scaleX(${frac})`;
    this.el.clock.classList.toggle('hurry', this.phase === 'running' && this.time <= 10);
  }

  maybeAnnounceScore() {
    if (this.phase !== 'running' || this.time === this.lastAnnounced) return;
    if (this.time % 10 === 0 || this.time <= 5) {
      this.lastAnnounced = this.time;
      announce(`${this.time} seconds left. You ${this.score.me}, ${this.opp.name} ${this.score.opp}.`);
    }
  }

  later(fn, ms) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  // ---- Effects ---------------------------------------------------------------------------

  bump(el) {
    el.animate?.([{ transform: 'scale(1)' }, { transform: 'scale(1.16)' }, { transform: 'scale(1)' }],
      { duration: 220, easing: 'cubic-bezier(.34,1.56,.64,1)' });
  }

  squash() {
    this.el.cookie.animate?.(
      [
        { transform: 'scale(1, 1)' },
        { transform: 'scale(1.06, 0.9)', offset: 0.35 },
        { transform: 'scale(0.97, 1.03)', offset: 0.7 },
        { transform: 'scale(1, 1)' },
      ],
      { duration: 170, easing: 'ease-out' });
  }

  addFx(el, ms) {
    const fx = this.el.fx;
    while (fx.childElementCount >= MAX_FX) fx.firstElementChild.remove();
    fx.appendChild(el);
    const done = () => el.remove();
    el.addEventListener('animationend', done, { once: true });
    setTimeout(done, ms + 400); // in case animations are off
  }

  floater(x, y, text, cls) {
    const el = h('span', { class: `floater ${cls || ''}` }, text);
    el.style.left = `${x}px`;
    el.style.top = `${y}px`;
    el.style.setProperty('--drift', `${Math.round((Math.random() - 0.5) * 40)}px`);
    this.addFx(el, 850);
  }

  crumbs(x, y) {
    for (let i = 0; i < 2; i++) {
      const el = h('span', { class: 'crumb' });
      const a = Math.random() * Math.PI * 2, d = 30 + Math.random() * 40;
      el.style.left = `${x}px`;
      el.style.top = `${y}px`;
      el.style.setProperty('--dx', `${Math.cos(a) * d}px`);
      el.style.setProperty('--dy', `${Math.sin(a) * d + 20}px`);
      this.addFx(el, 600);
    }
  }

  burstOpponent(points) {
    const area = this.el.area;
    const c = this.el.cookie.getBoundingClientRect();
    const a0 = area.getBoundingClientRect();
    const cx = c.left - a0.left + c.width / 2, cy = c.top - a0.top + c.height / 2;
    const r = c.width / 2;
    const n = 2 + points * 2;
    for (let i = 0; i < n; i++) {
      const a = Math.random() * Math.PI * 2;
      const el = h('span', { class: points >= 2 ? 'particle big' : 'particle' });
      el.style.left = `${cx + Math.cos(a) * r * 0.85}px`;
      el.style.top = `${cy + Math.sin(a) * r * 0.85}px`;
      const d = 40 + Math.random() * 50;
      el.style.setProperty('--dx', `${Math.cos(a) * d}px`);
      el.style.setProperty('--dy', `${Math.sin(a) * d}px`);
      this.addFx(el, 700);
    }
  }
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}
