// One WebSocket to /ws?token=T. Reconnection policy lives in the app; this
// class only opens, sends JSON messages and reports what happened.

export const CLOSE_REPLACED = 4000;
export const CLOSE_MOVED = 4001; // after MOVE: the game is on another instance
export const CLOSE_IDLE = 4002; // quiet in the lobby too long
export const CLOSE_SERVER_LOST = 1012; // the instance lost its lease (fenced)

/**
 * The URL of a MOVE (PROTOCOL.md, Cluster) with the token added the same way
 * as for this page's own server, or '' when it is not a ws:// or wss:// URL
 * (a message from a broken server must not send us anywhere else).
 */
export function moveUrl(target, token) {
  let url;
  try {
    url = new URL(String(target));
  } catch {
    return '';
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return '';
  if (url.username || url.password) return '';
  url.hash = '';
  url.searchParams.set('token', token);
  return url.href;
}

export class Connection {
  /**
   * @param {string} token
   * @param {{onOpen: Function, onMessage: Function, onClose: Function}} handlers
   * @param {string} [url] a full ws:// URL from moveUrl(); default: this page's server
   */
  constructor(token, handlers, url = '') {
    this.token = token;
    this.handlers = handlers;
    this.url = url;
    this.ws = null;
    this.opened = false;
    this.closedByUs = false;
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = this.url || `${scheme}//${location.host}/ws?token=${encodeURIComponent(this.token)}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      queueMicrotask(() => this.handlers.onClose({ code: 1006, reason: '', opened: false }));
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.opened = true;
      this.handlers.onOpen();
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('overcookied: ignoring a message that is not JSON');
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      const payload = msg.payload && typeof msg.payload === 'object' ? msg.payload : {};
      this.handlers.onMessage(msg.type, payload);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closedByUs) return;
      this.handlers.onClose({ code: ev.code, reason: ev.reason, opened: this.opened });
    });
    // 'error' is always followed by 'close', where it is handled.
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(type, payload) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(payload === undefined ? { type } : { type, payload }));
    return true;
  }

  close() {
    this.closedByUs = true;
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    if (ws.readyState === WebSocket.CONNECTING) {
      // Closing before the handshake ends logs an error in some browsers:
      // let it open, then close it.
      ws.addEventListener('open', () => ws.close(1000, 'bye'));
    } else if (ws.readyState === WebSocket.OPEN) {
      ws.close(1000, 'bye');
    }
  }
}
