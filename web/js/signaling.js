// @ts-check
/**
 * The connection to the signaling server: a WebSocket to `/ws`, reopened
 * with jittered exponential backoff when it drops; where WebSockets cannot
 * get through (a proxy that strips the upgrade, one that cuts it right
 * after), the same protocol over plain HTTP requests to `/poll` (long
 * polling), moving back to a WebSocket as soon as one stays open. Either
 * way the page sees one connection, with the same events.
 * @module
 */

import { joinMessage, leaveMessage, parseServerMessage, ProtocolError, renameMessage, signalMessage } from './protocol.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */

const BACKOFF_MIN_MS = 1000;
/**
 * The longest wait between two tries: a restarted server is found within
 * about this long, and a server that is down costs one small request per
 * try.
 */
const BACKOFF_MAX_MS = 8000;
/** A WebSocket closed this soon after opening, before any message, was cut by something in between. */
const CUT_MS = 3000;
/** How long a probing WebSocket must stay open before the page moves to it. */
const STABLE_MS = 1000;
/** The first try to move from long polling back to a WebSocket, then doubling up to the most. */
const UPGRADE_FIRST_MS = 5000;
const UPGRADE_MAX_MS = 5 * 60 * 1000;
/** Most client messages in one long-poll send. */
const POLL_SEND_BATCH = 64;

/**
 * One way of reaching the server. Calls `onOpen` once it is open,
 * `onMessage` with each server message's text, and `onClose` once (with
 * whether it had opened, and whether it got any message).
 * @typedef {object} TransportEvents
 * @property {() => void} onOpen
 * @property {(text: string) => void} onMessage
 * @property {(info: {opened: boolean, heard: boolean, goingAway: boolean}) => void} onClose
 *   `goingAway`: the server said it is stopping (WebSocket close code 1001)
 */

/** A WebSocket. */
class WsTransport {
  /**
   * @param {string} url
   * @param {TransportEvents} events
   */
  constructor(url, events) {
    this.kind = /** @type {'ws'} */ ('ws');
    this.events = events;
    this.opened = false;
    this.heard = false;
    this.done = false;
    this.ws = new WebSocket(url);
    this.ws.addEventListener('open', () => {
      if (this.done) return;
      this.opened = true;
      this.events.onOpen();
    });
    this.ws.addEventListener('message', (event) => {
      if (this.done || typeof event.data !== 'string') return;
      this.heard = true;
      this.events.onMessage(event.data);
    });
    this.ws.addEventListener('close', (event) => this.finish(event.code === 1001));
  }

  /** @param {string} text */
  send(text) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  close(code, reason) {
    this.ws.close(code, reason);
    this.finish();
  }

  /**
   * @private
   * @param {boolean} [goingAway]
   */
  finish(goingAway = false) {
    if (this.done) return;
    this.done = true;
    this.events.onClose({ opened: this.opened, heard: this.heard, goingAway });
  }
}

/**
 * Long polling: `POST /poll` opens a session, `POST /poll/TOKEN` sends
 * messages, `GET /poll/TOKEN?ack=SEQ` waits for the server's, and
 * `DELETE /poll/TOKEN` ends it (docs/protocol.md).
 */
class PollTransport {
  /**
   * @param {string} base the `/poll` URL
   * @param {TransportEvents} events
   */
  constructor(base, events) {
    this.kind = /** @type {'poll'} */ ('poll');
    this.base = base;
    this.events = events;
    this.opened = false;
    this.heard = false;
    this.done = false;
    /** @type {string | null} */
    this.session = null;
    this.ack = 0;
    this.waitMs = 20000;
    /** @type {string[]} */
    this.outbox = [];
    this.sending = false;
    this.aborter = new AbortController();
    void this.start();
  }

  /** @private */
  async start() {
    try {
      const response = await fetch(this.base, { method: 'POST', signal: this.aborter.signal, cache: 'no-store' });
      if (response.status !== 201) throw new Error(`opening a long-poll session: HTTP ${response.status}`);
      const body = await response.json();
      if (typeof body.session !== 'string') throw new Error('opening a long-poll session: no session');
      if (typeof body.wait_ms === 'number') this.waitMs = body.wait_ms;
      this.session = body.session;
    } catch {
      this.finish();
      return;
    }
    if (this.done) return;
    this.opened = true;
    this.events.onOpen();
    void this.receive();
  }

  /** @private */
  url() {
    return `${this.base}/${this.session}`;
  }

  /** @private */
  async receive() {
    while (!this.done) {
      // A request the network holds longer than the server would is dead.
      const timer = setTimeout(() => this.aborter.abort(), this.waitMs + 15000);
      let body;
      try {
        const response = await fetch(`${this.url()}?ack=${this.ack}`, { signal: this.aborter.signal, cache: 'no-store' });
        if (response.status !== 200) throw new Error(`long-poll receive: HTTP ${response.status}`);
        body = await response.json();
      } catch {
        clearTimeout(timer);
        this.finish();
        return;
      }
      clearTimeout(timer);
      if (this.done) return;
      if (typeof body.seq === 'number') this.ack = body.seq;
      for (const message of Array.isArray(body.messages) ? body.messages : []) {
        this.heard = true;
        this.events.onMessage(JSON.stringify(message));
        if (this.done) return;
      }
      if (body.closed !== undefined) {
        this.session = null; // the server has forgotten it already
        this.finish(body.closed === 'shutting_down');
        return;
      }
    }
  }

  /** @param {string} text */
  send(text) {
    if (!this.opened || this.done) return;
    this.outbox.push(text);
    void this.flush();
  }

  /** @private */
  async flush() {
    if (this.sending) return;
    this.sending = true;
    while (this.outbox.length > 0 && !this.done) {
      const batch = this.outbox.splice(0, POLL_SEND_BATCH);
      try {
        const response = await fetch(this.url(), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: `[${batch.join(',')}]`,
          signal: this.aborter.signal,
        });
        if (response.status !== 204) throw new Error(`long-poll send: HTTP ${response.status}`);
      } catch {
        this.finish();
        break;
      }
    }
    this.sending = false;
  }

  /**
   * Ends the session (the server keeps the member's place for the resume
   * grace period, as for a dropped WebSocket).
   * @param {number} _code
   * @param {string} _reason
   */
  close(_code, _reason) {
    if (this.session && !this.done) {
      // keepalive: the request outlives a page being closed.
      void fetch(this.url(), { method: 'DELETE', keepalive: true }).catch(() => {});
    }
    this.finish();
  }

  /**
   * @private
   * @param {boolean} [goingAway]
   */
  finish(goingAway = false) {
    if (this.done) return;
    this.done = true;
    this.aborter.abort();
    this.events.onClose({ opened: this.opened, heard: this.heard, goingAway });
  }
}

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
    this.pollUrl = url.replace(/^ws(s?):/, 'http$1:').replace(/\/ws$/, '/poll');
    /** @type {WsTransport | PollTransport | null} */
    this.transport = null;
    /** A long-poll session being left behind after a move to a WebSocket. */
    /** @type {PollTransport | null} */
    this.draining = null;
    /** @type {WsTransport | null} */
    this.probe = null;
    /** @type {'connecting' | 'open' | 'offline'} */
    this.state = 'offline';
    this.attempt = 0;
    /** WebSockets were cut right after opening: start with long polling. */
    this.preferPoll = false;
    this.upgradeDelay = UPGRADE_FIRST_MS;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.upgradeTimer = undefined;
    /** Not started yet, or stopped: nothing reopens the connection. */
    this.stopped = true;
    /** @type {'unreachable' | 'lost' | 'restarting'} why the last open connection ended; unreachable: none was open yet */
    this.reason = 'unreachable';
    /** The server said `shutting_down` on the connection in use. */
    this.restarting = false;
    // Back on the network, or back in front of the reader: try now rather
    // than at the end of a backoff that grew while nothing could work.
    addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retryNow();
    });
  }

  /** How the connection goes now: `websocket`, `poll`, or null when there is none. */
  get transportKind() {
    if (!this.transport || this.state !== 'open') return null;
    return this.transport.kind === 'ws' ? 'websocket' : 'poll';
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
    clearTimeout(this.upgradeTimer);
    this.probe?.close(4000, 'page closed');
    this.probe = null;
    const transport = this.transport;
    this.transport = null;
    transport?.close(4000, 'page closed');
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

  /**
   * Asks for a new nickname in the room.
   * @param {string} nick
   */
  rename(nick) {
    this.send(renameMessage(nick));
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
    if (this.state === 'open') this.transport?.send(JSON.stringify(msg));
  }

  /** @private */
  open() {
    this.setState('connecting');
    if (this.preferPoll) this.openPoll();
    else this.openWs();
  }

  /** @private */
  openWs() {
    let openedAt = 0;
    const transport = new WsTransport(this.url, {
      onOpen: () => {
        if (this.transport !== transport) return;
        openedAt = Date.now();
        this.attempt = 0;
        this.setState('open');
      },
      onMessage: (text) => {
        if (this.transport === transport) this.deliver(text);
      },
      onClose: ({ opened, heard, goingAway }) => {
        if (this.transport !== transport || this.stopped) return;
        this.transport = null;
        const cut = opened && !heard && Date.now() - openedAt < CUT_MS;
        if (!opened || cut) {
          // The WebSocket did not get through (or was cut at once): the
          // same connection, over plain HTTP requests.
          if (cut) this.preferPoll = true;
          this.openPoll();
          return;
        }
        this.dropped(goingAway);
      },
    });
    this.transport = transport;
  }

  /** @private */
  openPoll() {
    const transport = new PollTransport(this.pollUrl, {
      onOpen: () => {
        if (this.transport !== transport) return;
        this.attempt = 0;
        this.setState('open');
        this.upgradeDelay = UPGRADE_FIRST_MS;
        this.scheduleUpgrade();
      },
      onMessage: (text) => {
        if (this.transport === transport) this.deliver(text);
      },
      onClose: ({ opened, goingAway }) => {
        if (this.transport !== transport || this.stopped) return;
        this.transport = null;
        clearTimeout(this.upgradeTimer);
        if (opened) this.dropped(goingAway);
        else this.offline();
      },
    });
    this.transport = transport;
  }

  /**
   * While on long polling, tries now and then whether a WebSocket gets
   * through; once one has stayed open for a moment, moves to it.
   * @private
   */
  scheduleUpgrade() {
    clearTimeout(this.upgradeTimer);
    this.upgradeTimer = setTimeout(() => this.probeWs(), this.upgradeDelay);
    this.upgradeDelay = Math.min(UPGRADE_MAX_MS, this.upgradeDelay * 2);
  }

  /** @private */
  probeWs() {
    if (this.stopped || this.transport?.kind !== 'poll' || this.state !== 'open') return;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let stable;
    const probe = new WsTransport(this.url, {
      onOpen: () => {
        stable = setTimeout(() => this.moveTo(probe), STABLE_MS);
      },
      onMessage: (text) => {
        if (this.transport === probe) this.deliver(text);
      },
      onClose: ({ heard, goingAway }) => {
        clearTimeout(stable);
        if (this.probe === probe) {
          this.probe = null;
          this.scheduleUpgrade();
          return;
        }
        if (this.transport !== probe || this.stopped) return;
        // The WebSocket we moved to dropped: back to the start.
        this.transport = null;
        if (!heard) this.preferPoll = true;
        this.dropped(goingAway);
      },
    });
    this.probe = probe;
  }

  /**
   * Moves from long polling to the WebSocket `probe`. The page is told the
   * connection is open (again), so it joins again with its key: the server
   * gives it its place back on the WebSocket and ends the long-poll
   * session, whose last messages still come through.
   * @private
   * @param {WsTransport} probe
   */
  moveTo(probe) {
    if (this.probe !== probe || this.transport?.kind !== 'poll') return;
    this.probe = null;
    const old = /** @type {PollTransport} */ (this.transport);
    this.draining = old;
    old.events = {
      onOpen: () => {},
      onMessage: (text) => {
        // Its end is our own doing.
        if (/"code"\s*:\s*"replaced"/.test(text)) return;
        this.deliver(text);
      },
      onClose: () => {
        if (this.draining === old) this.draining = null;
      },
    };
    // Left to end when the server replaces it; dropped after a while if not.
    setTimeout(() => old.close(4000, 'moved to a WebSocket'), 10000);
    this.transport = probe;
    this.preferPoll = false;
    this.upgradeDelay = UPGRADE_FIRST_MS;
    this.setState('open');
  }

  /**
   * @private
   * @param {string} text
   */
  deliver(text) {
    let msg;
    try {
      msg = parseServerMessage(text);
    } catch (e) {
      // A newer server may send types this client does not know.
      if (!(e instanceof ProtocolError && e.code === 'unknown_type')) {
        console.warn('peerchat: ignoring a malformed server message', e);
      }
      return;
    }
    if (msg.type === 'error' && msg.code === 'shutting_down') this.restarting = true;
    this.dispatchEvent(new CustomEvent('message', { detail: msg }));
  }

  /**
   * An open connection ended: says why, then tries again.
   * @private
   * @param {boolean} goingAway the server said it is stopping
   */
  dropped(goingAway) {
    // `shutting_down`, or 1001: the server is going away (stopping, most
    // likely to restart). A try that fails keeps the reason of the drop
    // before it.
    this.reason = this.restarting || goingAway ? 'restarting' : 'lost';
    this.restarting = false;
    this.offline();
  }

  /** @private */
  offline() {
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.open(), delay);
    this.setState('offline', delay);
  }

  /**
   * @private
   * @param {'connecting' | 'open' | 'offline'} state
   * @param {number} [retryInMs]
   */
  setState(state, retryInMs) {
    this.state = state;
    if (state === 'open') this.restarting = false;
    const reason = state === 'offline' ? this.reason : undefined;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, retryInMs, reason } }));
  }
}
