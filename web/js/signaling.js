// @ts-check
/**
 * The connection to the signaling server: one WebSocket to `/ws`, reopened
 * with jittered exponential backoff when it drops.
 * @module
 */

import { joinMessage, leaveMessage, parseServerMessage, ProtocolError, signalMessage } from './protocol.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */

const BACKOFF_MIN_MS = 1000;
/**
 * The longest wait between two tries: a restarted server is found within
 * about this long, and a server that is down costs one small request per
 * try.
 */
const BACKOFF_MAX_MS = 8000;

/**
 * Events: `state` (detail: {state, retryInMs?, reason?}), `message`
 * (detail: ServerMessage). States: `connecting`, `open`, `offline`; when
 * offline, `reason` says why: `unreachable` (no connection could be made),
 * `lost` (an open connection dropped) or `restarting` (the server said it
 * is stopping). Tries again with backoff, at once when the browser comes
 * back online or the page is shown again, or on {@link retryNow}.
 */
export class Signaling extends EventTarget {
  /** @param {string} url the `/ws` URL */
  constructor(url) {
    super();
    this.url = url;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {'connecting' | 'open' | 'offline'} */
    this.state = 'offline';
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** Not started yet, or stopped: nothing reopens the connection. */
    this.stopped = true;
    /** @type {'unreachable' | 'lost' | 'restarting'} why the last open connection ended; unreachable: none was open yet */
    this.reason = 'unreachable';
    // Back on the network, or back in front of the reader: try now rather
    // than at the end of a backoff that grew while nothing could work.
    addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retryNow();
    });
  }

  /** Opens the connection (and keeps reopening it until {@link stop}). */
  start() {
    this.stopped = false;
    this.open();
  }

  /**
   * Closes the connection for good. Without a `leave` first, the server
   * holds our place for a while, so that a reloaded page comes back as
   * the same member.
   */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(4000, 'page closed');
    this.ws = null;
  }

  /** Reconnects now instead of waiting for the backoff timer. */
  retryNow() {
    if (this.state !== 'offline' || this.stopped) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /**
   * @param {string} room
   * @param {string} nick
   * @param {string} [key] the member key: the same key gets the same peer id back
   */
  join(room, nick, key) {
    this.send(joinMessage(room, nick, key));
  }

  /** Leaves the room for good (the others are told at once) and closes. */
  leave() {
    this.send(leaveMessage());
    this.stop();
  }

  /**
   * @param {string} to
   * @param {object} payload
   */
  signal(to, payload) {
    this.send(signalMessage(to, payload));
  }

  /** @param {object} msg */
  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** @private */
  open() {
    this.setState('connecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    let restarting = false;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      opened = true;
      this.attempt = 0;
      this.setState('open');
    });
    ws.addEventListener('message', (event) => {
      if (this.ws !== ws || typeof event.data !== 'string') return;
      let msg;
      try {
        msg = parseServerMessage(event.data);
      } catch (e) {
        // A newer server may send types this client does not know.
        if (!(e instanceof ProtocolError && e.code === 'unknown_type')) {
          console.warn('peerchat: ignoring a malformed server message', e);
        }
        return;
      }
      if (msg.type === 'error' && msg.code === 'shutting_down') restarting = true;
      this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      // `shutting_down`, or 1001: the server is going away (stopping, most
      // likely to restart).
      // A try that fails keeps the reason of the drop before it.
      if (opened) this.reason = restarting || event.code === 1001 ? 'restarting' : 'lost';
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
      const delay = Math.round(base / 2 + Math.random() * (base / 2));
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.open(), delay);
      this.setState('offline', delay);
    });
  }

  /**
   * @private
   * @param {'connecting' | 'open' | 'offline'} state
   * @param {number} [retryInMs]
   */
  setState(state, retryInMs) {
    this.state = state;
    const reason = state === 'offline' ? this.reason : undefined;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, retryInMs, reason } }));
  }
}
