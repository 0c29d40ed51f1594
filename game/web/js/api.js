// HTTP API (PROTOCOL.md) and the saved session.

const TIMEOUT_MS = 8000;
const SESSION_KEY = 'overcookied.session';

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

async function request(path, { method = 'GET', body, token } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = 'Bearer ' + token;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctrl.signal,
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(e.name === 'AbortError'
      ? 'The server took too long to answer. Try again in a moment.'
      : 'Cannot reach the server. Check your connection and try again.');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : `The server answered ${res.status}.`;
    throw new ApiError(msg, res.status);
  }
  return data;
}

export async function login(name) {
  const data = await request('/api/login', { method: 'POST', body: { name } });
  if (!data || typeof data.token !== 'string' || typeof data.userId !== 'string') {
    throw new ApiError('The server sent an unexpected answer.');
  }
  return { token: data.token, userId: data.userId, name: String(data.name ?? name) };
}

export async function leaderboard(limit = 10) {
  const data = await request(`/api/leaderboard?limit=${limit}`);
  return Array.isArray(data) ? data : [];
}

export async function history(token, limit = 100) {
  const data = await request(`/api/history?limit=${limit}`, { token });
  return {
    games: Array.isArray(data?.games) ? data.games : [],
    totalCount: Number.isFinite(data?.totalCount) ? data.totalCount : 0,
  };
}

// ---- Session: the token lives in localStorage -----------------------------------

/** The `exp` claim of a JWT, in ms, or 0 when it cannot be read. */
function tokenExpiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    return Number(claims.exp) * 1000 || 0;
  } catch {
    return 0;
  }
}

export function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    if (!s || typeof s.token !== 'string' || typeof s.userId !== 'string' || typeof s.name !== 'string') return null;
    const exp = tokenExpiry(s.token);
    if (exp && exp < Date.now() + 60_000) return null; // expired or about to
    return s;
  } catch {
    return null;
  }
}

export function saveSession(s) {
  try {
    localStorage.setItem(SESSION_KEY, JSON.stringify({ token: s.token, userId: s.userId, name: s.name }));
  } catch {
    // Private mode without storage: the session lasts as long as the page.
  }
}

export function clearSession() {
  try {
    localStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing stored
  }
}
