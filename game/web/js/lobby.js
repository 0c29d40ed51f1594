// The lobby's leaderboard and history panels. Names are always text.

import { $, h, svgUse, clear, setText, timeAgo } from './dom.js';

export const REASONS = {
  time: 'Time’s up',
  quit: 'Quit',
  opponent_disconnected: 'Disconnected',
  server_lost: 'Server stopped, did not count',
};

/** The reason a game ended, from this player's side. */
export function reasonLabel(reason, result) {
  if (reason === 'quit') return result === 'win' ? 'Opponent quit' : 'You quit';
  if (reason === 'opponent_disconnected') return result === 'win' ? 'Opponent disconnected' : 'You disconnected';
  return REASONS[reason] || (reason ? String(reason) : 'Ended');
}

function skeleton(rows) {
  return h('div', { class: 'skeleton', 'aria-hidden': 'true' }, Array.from({ length: rows }, () => h('span')));
}

function empty(title, text) {
  return h('div', { class: 'empty' }, svgUse('sym-cookie'), h('strong', null, title), h('span', null, text));
}

function failed(text, retry) {
  const btn = h('button', { class: 'btn btn-secondary btn-small', type: 'button' }, 'Try again');
  btn.addEventListener('click', retry);
  return h('div', { class: 'empty' }, h('strong', null, 'Could not load this'), h('span', null, text), btn);
}

export function boardLoading() {
  const body = $('board-body');
  body.setAttribute('aria-busy', 'true');
  if (!body.querySelector('table')) {
    clear(body);
    body.appendChild(skeleton(5));
  }
}

export function renderBoard(entries, myName) {
  const body = $('board-body');
  body.setAttribute('aria-busy', 'false');
  clear(body);
  if (!entries.length) {
    body.appendChild(empty('No scores yet', 'Play a game to the end of the clock and your score goes up here. Be the first!'));
    return;
  }
  const rows = entries.slice(0, 10).map((e, i) => {
    const rank = i + 1;
    const name = String(e.name ?? '');
    const cls = [rank <= 3 ? `top${rank}` : '', name === myName ? 'is-me' : ''].join(' ').trim();
    return h('tr', { class: cls || null },
      h('td', { class: 'rank' }, rank <= 3 ? h('span', { class: 'medal' }, rank) : rank),
      h('td', { class: 'who', title: name }, name),
      h('td', { class: 'num' }, Number(e.score) || 0),
      h('td', { class: 'num' }, `${Number(e.wins) || 0}/${Number(e.games) || 0}`));
  });
  body.appendChild(h('table', { class: 'board-table' },
    h('caption', { class: 'sr-only' }, 'Top 10 bakers by total score'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, '#'),
      h('th', { scope: 'col' }, 'Baker'),
      h('th', { scope: 'col', class: 'num' }, 'Score'),
      h('th', { scope: 'col', class: 'num', title: 'Wins / games' }, 'W/G'))),
    h('tbody', null, rows)));
}

export function boardFailed(message, retry) {
  const body = $('board-body');
  body.setAttribute('aria-busy', 'false');
  clear(body);
  body.appendChild(failed(message, retry));
}

export function historyLoading() {
  const body = $('history-body');
  body.setAttribute('aria-busy', 'true');
  if (!body.querySelector('ul')) {
    clear(body);
    body.appendChild(skeleton(3));
  }
}

export function resultOf(g) {
  if (g.winner === 'draw') return 'draw';
  if (g.winner === 'none' || g.reason === 'server_lost') return 'void'; // PROTOCOL.md, Cluster
  return g.won ? 'win' : 'loss';
}

export function renderHistory(hist) {
  const body = $('history-body');
  body.setAttribute('aria-busy', 'false');
  clear(body);
  const games = hist.games;
  const wins = games.filter((g) => resultOf(g) === 'win').length;
  const losses = games.filter((g) => resultOf(g) === 'loss').length;
  const best = games.reduce((m, g) => Math.max(m, Number(g.score) || 0), 0);
  const partial = hist.totalCount > games.length;
  setText('stat-played', hist.totalCount);
  setText('stat-wins', games.length ? wins : 0);
  setText('stat-losses', games.length ? losses : 0);
  setText('stat-best', games.length ? best : '–');
  $('stats').title = partial ? `Wins, losses and best over your last ${games.length} games` : '';
  if (!games.length) {
    body.appendChild(empty('No bakes yet', 'Hit Play to find an opponent. Your games will show up here.'));
    return;
  }
  const labels = { win: 'W', loss: 'L', draw: 'D', void: '–' };
  const words = { win: 'Win', loss: 'Loss', draw: 'Draw', void: 'Did not count' };
  const items = games.slice(0, 8).map((g) => {
    const r = resultOf(g);
    const opp = String(g.opponentName ?? 'someone');
    return h('li', { class: 'game-row', dataset: { gameId: String(g.gameId ?? '') } },
      h('span', { class: `badge ${r}`, title: words[r] }, h('span', { 'aria-hidden': 'true' }, labels[r]), h('span', { class: 'sr-only' }, words[r])),
      h('span', { class: 'game-vs', title: opp }, h('span', { class: 'vs-label' }, 'vs '), h('span', { class: 'opp-name' }, opp)),
      h('span', { class: 'game-score' }, `${Number(g.score) || 0} – ${Number(g.opponentScore) || 0}`),
      h('span', { class: 'game-meta' },
        h('span', { class: 'reason-tag' }, reasonLabel(g.reason, r)),
        h('span', { 'aria-hidden': 'true' }, '·'),
        h('span', null, timeAgo(g.timestamp))));
  });
  body.appendChild(h('ul', { class: 'games', 'aria-label': 'Your last games' }, items));
}

export function historyFailed(message, retry) {
  const body = $('history-body');
  body.setAttribute('aria-busy', 'false');
  clear(body);
  body.appendChild(failed(message, retry));
}
