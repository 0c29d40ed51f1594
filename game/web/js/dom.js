// Small DOM helpers. Every piece of data reaches the page as text
// (textContent or text nodes), never as markup.

export const $ = (id) => document.getElementById(id);

/**
 * h('li', {class: 'x', dataset: {k: 'v'}}, 'text', child) builds an element.
 * Strings and numbers become text nodes; null/false children are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') Object.assign(el.style, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** An inline SVG that uses one of the page's shared symbols. */
export function svgUse(symbol, cls) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 200 200');
  svg.setAttribute('aria-hidden', 'true');
  if (cls) svg.setAttribute('class', cls);
  const use = document.createElementNS(ns, 'use');
  use.setAttribute('href', '#' + symbol);
  svg.appendChild(use);
  return svg;
}

export function setText(id, text) {
  const el = typeof id === 'string' ? $(id) : id;
  if (el && el.textContent !== String(text)) el.textContent = String(text);
}

export function show(el, visible = true) {
  const e = typeof el === 'string' ? $(el) : el;
  if (e) e.hidden = !visible;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** m:ss */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function timeAgo(unixSeconds, now = Date.now()) {
  const t = Number(unixSeconds) * 1000;
  if (!Number.isFinite(t) || t <= 0) return '';
  const d = Math.max(0, Math.round((now - t) / 1000));
  if (d < 45) return 'just now';
  if (d < 90) return '1 min ago';
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 5400) return '1 hour ago';
  if (d < 86400) return `${Math.round(d / 3600)} hours ago`;
  if (d < 172800) return 'yesterday';
  return new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

// ---- Announcements for screen readers ------------------------------------------

let liveTimer = 0;
/** Polite announcement (scores, events). */
export function announce(text) {
  const el = $('sr-live');
  if (!el) return;
  // Clear first so that repeating the same sentence is announced again.
  el.textContent = '';
  clearTimeout(liveTimer);
  liveTimer = setTimeout(() => { el.textContent = text; }, 30);
}

/** Assertive announcement (connection trouble, the result). */
export function alertSr(text) {
  const el = $('sr-alert');
  if (!el) return;
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 30);
}

// ---- Toasts ----------------------------------------------------------------------

const toastKeys = new Map();
/**
 * A short message at the bottom of the screen. A toast with a key replaces a
 * visible one with the same key instead of stacking.
 */
export function toast(text, { tone = '', ms = 2600, key = '' } = {}) {
  const box = $('toasts');
  if (!box) return;
  if (key && toastKeys.has(key)) {
    const old = toastKeys.get(key);
    old.el.textContent = text;
    clearTimeout(old.timer);
    old.timer = setTimeout(() => dismiss(key, old.el), ms);
    return;
  }
  const el = h('div', { class: 'toast', dataset: tone ? { tone } : undefined }, text);
  box.appendChild(el);
  while (box.children.length > 3) box.removeChild(box.firstChild);
  const entry = { el, timer: setTimeout(() => dismiss(key, el), ms) };
  if (key) toastKeys.set(key, entry);
}

/** Takes a keyed toast away early. */
export function dismissToast(key) {
  const entry = toastKeys.get(key);
  if (!entry) return;
  clearTimeout(entry.timer);
  dismiss(key, entry.el);
}

function dismiss(key, el) {
  if (key && toastKeys.get(key)?.el === el) toastKeys.delete(key);
  el.classList.add('out');
  setTimeout(() => el.remove(), 320);
}
