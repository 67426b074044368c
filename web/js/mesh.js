// @ts-check
/**
 * The mesh rules: who is in the room as this member sees it, which
 * connection (link) to each member is the current one, who starts a link,
 * who wins when both start at once, when a lost link is repaired or rebuilt,
 * when a member the server no longer lists counts as gone, and when to join
 * (again). No I/O and no clock: the caller passes inputs and the time in,
 * carries out the outputs returned, and calls {@link Mesh#handleTimeout}
 * at {@link Mesh#nextDeadline}. Randomness (connection ids, backoff jitter)
 * comes from a generator seeded by the caller.
 *
 * This mirrors the Rust crate `peerchat-mesh`; both replay the scenarios in
 * `tests/vectors/mesh.json`, so the two cannot drift apart. Inputs and
 * outputs are the JSON objects of that file. See docs/protocol.md, section
 * 2, for the rules, and docs/architecture.md for the machine.
 * @module
 */

import { base64url } from './protocol.js';

/**
 * @typedef {{relays_signals: boolean, ice_restart: boolean, relink_min_ms: number,
 *   relink_max_ms: number, gone_after_ms: number, rejoin_delay_ms: number,
 *   setup_timeout_ms: number, repair_timeout_ms: number, glare_wait_ms: number}} Config
 * @typedef {{id: string, nick: string}} Peer
 * @typedef {'connecting' | 'open' | 'offline'} ServerState
 * @typedef {'offer' | 'answer' | 'candidate'} SignalKind
 * @typedef {'connected' | 'disconnected' | 'failed'} Transport
 * @typedef {'connecting' | 'verifying' | 'connected' | 'reconnecting' | 'not_verified'} LinkState
 * @typedef {{join: {}}
 *   | {server: ServerState}
 *   | {joined: {you: string, members: Peer[], resumed?: boolean}}
 *   | {peer_joined: Peer}
 *   | {peer_renamed: Peer}
 *   | {peer_left: {id: string}}
 *   | {error: {code: string, to?: string}}
 *   | {signal: {from: string, sid: string, kind: SignalKind}}
 *   | {link_opened: {sid: string}}
 *   | {verified: {sid: string}}
 *   | {rejected: {sid: string}}
 *   | {link_closed: {sid: string}}
 *   | {transport: {sid: string, state: Transport}}
 *   | {restart: {peer: string}}} Input
 * @typedef {{join: {}}
 *   | {join_refused: {code: string}}
 *   | {entered: {first: boolean}}
 *   | {added: {peer: string, nick: string, announce: boolean}}
 *   | {renamed: {peer: string, nick: string}}
 *   | {removed: {peer: string, announce: boolean}}
 *   | {state: {peer: string, state: LinkState}}
 *   | {start: {peer: string, sid: string}}
 *   | {accept: {peer: string, sid: string}}
 *   | {forward: {peer: string, sid: string}}
 *   | {drop: {peer: string, sid: string}}
 *   | {restart_ice: {peer: string, sid: string}}
 *   | {hello: {peer: string, sid: string}}
 *   | {up: {peer: string, sid: string}}
 *   | {down: {peer: string}}} Output
 * @typedef {{sid: string, started: boolean, open: boolean, verified: boolean, lost: Transport | null,
 *   heard: boolean, setupDeadline: number | null, repairDeadline: number | null, glareDeadline: number | null}} Link
 * @typedef {{id: string, nick: string, listed: boolean, link: Link | null, setback: boolean,
 *   rejected: boolean, state: LinkState, relinkAttempt: number, relinkAt: number | null,
 *   goneAt: number | null}} Member
 */

/** A room, on a stack that can restart ICE. @type {Config} */
export const DEFAULT_CONFIG = {
  relays_signals: true,
  ice_restart: true,
  relink_min_ms: 1000,
  relink_max_ms: 30000,
  gone_after_ms: 20000,
  rejoin_delay_ms: 2000,
  setup_timeout_ms: 30000,
  repair_timeout_ms: 20000,
  glare_wait_ms: 5000,
};

/** Two members without a room: no signals after the first exchange. @type {Config} */
export const PAIR_CONFIG = { ...DEFAULT_CONFIG, relays_signals: false, ice_restart: false };

/** The error codes that refuse a `join`. */
const REFUSING = new Set(['nick_taken', 'bad_nick', 'room_full', 'bad_room', 'bad_key', 'unsupported_version']);

/**
 * Marsaglia's xorshift128 on four 32-bit words, as the Rust crate
 * `rand_xorshift` computes it (an all-zero seed is replaced there too).
 */
class XorShift {
  /** @param {number[]} seed four 32-bit words */
  constructor(seed) {
    const words = seed.map((w) => w >>> 0);
    this.s = words.every((w) => w === 0) ? [0xbad5eed, 0xbad5eed, 0xbad5eed, 0xbad5eed] : words;
  }

  /** The next 32-bit draw. */
  next() {
    const [x, y, z, w] = this.s;
    const t = (x ^ (x << 11)) >>> 0;
    const drawn = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    this.s = [y, z, w, drawn];
    return drawn;
  }
}

/**
 * @param {Member} m
 * @returns {LinkState}
 */
function derivedState(m) {
  const link = m.link;
  if (link && link.verified && link.lost === null) return 'connected';
  if (link?.lost) return 'reconnecting';
  if (link?.open) return 'verifying';
  if (m.rejected) return 'not_verified';
  if (m.setback) return 'reconnecting';
  return 'connecting';
}

/**
 * A fresh seed for a {@link Mesh}: 128 random bits.
 * @returns {number[]}
 */
export function randomSeed() {
  return [...crypto.getRandomValues(new Uint32Array(4))];
}

export class Mesh {
  /**
   * @param {Partial<Config>} [config]
   * @param {number[]} [seed] four 32-bit words; random when left out
   */
  constructor(config = {}, seed = randomSeed()) {
    /** @type {Config} */
    this.config = { ...DEFAULT_CONFIG, ...config };
    this.rng = new XorShift(seed);
    /** @type {string | null} our peer id, once joined */
    this.me = null;
    /** The user asked to join and was not refused since. */
    this.wantJoin = false;
    this.serverOpen = false;
    /** Whether the server has us in the room now. */
    this.joined = false;
    this.everJoined = false;
    /** @type {number | null} */
    this.rejoinAt = null;
    /** @type {Member[]} in the order we learnt of them */
    this.list = [];
  }

  /**
   * The other members, in the order we learnt of them: id, nick, state,
   * whether the server lists them, and the current link.
   */
  members() {
    return this.list.map((m) => ({
      id: m.id,
      nick: m.nick,
      state: m.state,
      listed: m.listed,
      sid: m.link?.sid ?? null,
      open: m.link?.open ?? false,
      verified: m.link?.verified ?? false,
    }));
  }

  /**
   * When {@link Mesh#handleTimeout} should be called next, if ever.
   * @returns {number | null}
   */
  nextDeadline() {
    /** @type {(number | null)[]} */
    const all = [this.rejoinAt];
    for (const m of this.list) {
      all.push(m.relinkAt, m.goneAt, m.link?.setupDeadline ?? null, m.link?.repairDeadline ?? null, m.link?.glareDeadline ?? null);
    }
    const due = /** @type {number[]} */ (all.filter((t) => t !== null));
    return due.length === 0 ? null : Math.min(...due);
  }

  /**
   * Handles one input at time `now` (ms).
   * @param {number} now
   * @param {Input} input
   * @returns {Output[]}
   */
  handle(now, input) {
    /** @type {Output[]} */
    const out = [];
    if ('join' in input) {
      this.wantJoin = true;
      if (this.serverOpen && !this.joined) out.push({ join: {} });
    } else if ('server' in input) {
      this.serverOpen = input.server === 'open';
      if (this.serverOpen) {
        if (this.wantJoin && !this.joined) out.push({ join: {} });
      } else {
        this.joined = false;
        this.rejoinAt = null;
      }
    } else if ('joined' in input) {
      this.onJoined(now, input.joined.you, input.joined.members, out);
    } else if ('peer_joined' in input) {
      const m = this.find(input.peer_joined.id);
      if (m) {
        // The same member back (it starts a new link if it needs one),
        // perhaps under another nickname.
        this.rename(m, input.peer_joined.nick, out);
        m.listed = true;
        m.goneAt = null;
      } else {
        // The newcomer starts. Should its offer be lost, the smaller id
        // starts one when the setup time is over.
        const added = this.add(input.peer_joined, true, out);
        if (this.me !== null && this.me < added.id && this.config.relays_signals) {
          added.relinkAt = now + this.config.setup_timeout_ms;
        }
      }
    } else if ('peer_renamed' in input) {
      // Only a member we know; the server lists the others with their
      // current nickname when it tells us of them.
      const m = this.find(input.peer_renamed.id);
      if (m) this.rename(m, input.peer_renamed.nick, out);
    } else if ('peer_left' in input) {
      const m = this.find(input.peer_left.id);
      if (m) this.remove(m, true, out);
    } else if ('error' in input) {
      this.onError(now, input.error.code, input.error.to ?? null, out);
    } else if ('signal' in input) {
      this.onSignal(now, input.signal.from, input.signal.sid, input.signal.kind, out);
    } else if ('link_opened' in input) {
      const m = this.bySid(input.link_opened.sid);
      // A link opens once, however often it says so.
      if (m?.link && !m.link.open) {
        m.link.open = true;
        m.setback = true;
        this.updateState(m, out);
        out.push({ hello: { peer: m.id, sid: m.link.sid } });
      }
    } else if ('verified' in input) {
      const m = this.bySid(input.verified.sid);
      // The hello of an open link verifies once.
      if (m?.link && m.link.open && !m.link.verified) {
        m.link.verified = true;
        m.link.setupDeadline = null;
        m.rejected = false;
        m.relinkAttempt = 0;
        this.updateState(m, out);
        out.push({ up: { peer: m.id, sid: m.link.sid } });
      }
    } else if ('rejected' in input) {
      const m = this.bySid(input.rejected.sid);
      if (m?.link) {
        // It counts as closed; the member shows as not verified until a
        // link to it verifies.
        m.rejected = true;
        out.push({ drop: { peer: m.id, sid: m.link.sid } });
        this.closed(now, m, out);
      }
    } else if ('link_closed' in input) {
      const m = this.bySid(input.link_closed.sid);
      if (m) this.closed(now, m, out);
    } else if ('transport' in input) {
      const m = this.bySid(input.transport.sid);
      if (m) this.onTransport(now, m, input.transport.state, out);
    } else if ('restart' in input) {
      const m = this.find(input.restart.peer);
      if (m) {
        this.dropLink(m, out);
        this.start(now, m, out);
        this.updateState(m, out);
      }
    }
    return out;
  }

  /**
   * Handles every timer due at `now` (ms).
   * @param {number} now
   * @returns {Output[]}
   */
  handleTimeout(now) {
    /** @type {Output[]} */
    const out = [];
    const due = (/** @type {number | null} */ at) => at !== null && at <= now;
    if (due(this.rejoinAt)) {
      this.rejoinAt = null;
      if (this.serverOpen && this.wantJoin && !this.joined) out.push({ join: {} });
    }
    for (const m of [...this.list]) {
      if (due(m.goneAt)) {
        m.goneAt = null;
        if (!m.listed && !m.link?.open) {
          this.remove(m, true, out);
          continue;
        }
      }
      if (due(m.relinkAt)) {
        m.relinkAt = null;
        if (!m.link && m.listed && this.joined) this.start(now, m, out);
      }
      const link = m.link;
      if (link && (due(link.setupDeadline) || due(link.repairDeadline) || due(link.glareDeadline))) {
        // Given up: it counts as closed.
        out.push({ drop: { peer: m.id, sid: link.sid } });
        this.closed(now, m, out);
      }
    }
    return out;
  }

  /**
   * @private
   * @param {string} id
   */
  find(id) {
    return this.list.find((m) => m.id === id);
  }

  /**
   * @private
   * @param {string} sid
   */
  bySid(sid) {
    return this.list.find((m) => m.link?.sid === sid);
  }

  /**
   * A fresh connection id: 128 bits in base64url, 22 characters.
   * @private
   */
  sid() {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 16; i += 4) view.setUint32(i, this.rng.next(), true);
    return base64url(bytes);
  }

  /**
   * The backoff before rebuilding a link for the `attempt`th time: half of
   * min(relink_max, relink_min × 2^attempt), plus up to as much again.
   * @private
   * @param {number} attempt
   */
  backoff(attempt) {
    const base = Math.min(this.config.relink_max_ms, this.config.relink_min_ms * 2 ** attempt);
    const half = Math.floor(base / 2);
    // Exact: draw × half stays below 2^53.
    return half + Math.floor((this.rng.next() * half) / 2 ** 32);
  }

  /**
   * @private
   * @param {Peer} peer
   * @param {boolean} announce
   * @param {Output[]} out
   */
  add(peer, announce, out) {
    out.push({ added: { peer: peer.id, nick: peer.nick, announce } });
    /** @type {Member} */
    const m = {
      id: peer.id,
      nick: peer.nick,
      listed: true,
      link: null,
      setback: false,
      rejected: false,
      state: 'connecting',
      relinkAttempt: 0,
      relinkAt: null,
      goneAt: null,
    };
    this.list.push(m);
    return m;
  }

  /**
   * @private
   * @param {Member} m
   * @param {string} nick
   * @param {Output[]} out
   */
  rename(m, nick, out) {
    if (m.nick === nick) return;
    m.nick = nick;
    out.push({ renamed: { peer: m.id, nick } });
  }

  /**
   * @private
   * @param {Member} m
   * @param {boolean} announce
   * @param {Output[]} out
   */
  remove(m, announce, out) {
    this.dropLink(m, out);
    this.list.splice(this.list.indexOf(m), 1);
    out.push({ removed: { peer: m.id, announce } });
  }

  /**
   * Closes the current link, if any.
   * @private
   * @param {Member} m
   * @param {Output[]} out
   */
  dropLink(m, out) {
    const link = m.link;
    if (!link) return;
    m.link = null;
    out.push({ drop: { peer: m.id, sid: link.sid } });
    if (link.verified) out.push({ down: { peer: m.id } });
  }

  /**
   * @private
   * @param {string} sid
   * @param {boolean} started
   * @param {number} now
   * @returns {Link}
   */
  newLink(sid, started, now) {
    const setupDeadline = this.config.relays_signals ? now + this.config.setup_timeout_ms : null;
    return { sid, started, open: false, verified: false, lost: null, heard: false, setupDeadline, repairDeadline: null, glareDeadline: null };
  }

  /**
   * @private
   * @param {number} now
   * @param {Member} m
   * @param {Output[]} out
   */
  start(now, m, out) {
    this.setLink(now, m, this.sid(), true, out);
  }

  /**
   * Makes link `sid` the member's current one: one we start, or one we
   * accept.
   * @private
   * @param {number} now
   * @param {Member} m
   * @param {string} sid
   * @param {boolean} started
   * @param {Output[]} out
   */
  setLink(now, m, sid, started, out) {
    m.link = this.newLink(sid, started, now);
    m.relinkAt = null;
    out.push(started ? { start: { peer: m.id, sid } } : { accept: { peer: m.id, sid } });
  }

  /**
   * @private
   * @param {Member} m
   * @param {Output[]} out
   */
  updateState(m, out) {
    const state = derivedState(m);
    if (state === m.state) return;
    m.state = state;
    out.push({ state: { peer: m.id, state } });
  }

  /**
   * @private
   * @param {number} now
   * @param {string} you
   * @param {Peer[]} members
   * @param {Output[]} out
   */
  onJoined(now, you, members, out) {
    if (this.me !== you) {
      // Links made under another id are of no use.
      for (const m of this.list) {
        this.dropLink(m, out);
        this.updateState(m, out);
      }
      this.me = you;
    }
    this.joined = true;
    this.rejoinAt = null;
    const first = !this.everJoined;
    const listed = new Set(members.map((p) => p.id));
    // Members who have not come back to the server yet keep their link
    // while it stays open, or a while to come back.
    for (const m of this.list) {
      if (listed.has(m.id)) continue;
      m.listed = false;
      m.relinkAt = null;
      if (!m.link?.open) m.goneAt = now + this.config.gone_after_ms;
    }
    for (const peer of members) {
      let m = this.find(peer.id);
      if (m) this.rename(m, peer.nick, out);
      else m = this.add(peer, !first, out);
      m.listed = true;
      m.goneAt = null;
      // An open link survives the server going away and coming back; we
      // (re)join, so we start any that is missing and repair any that lost
      // its path.
      if (!m.link) {
        this.start(now, m, out);
      } else if (m.link.lost) {
        if (this.config.ice_restart) {
          out.push({ restart_ice: { peer: m.id, sid: m.link.sid } });
        } else {
          this.dropLink(m, out);
          this.start(now, m, out);
          this.updateState(m, out);
        }
      }
    }
    this.everJoined = true;
    out.push({ entered: { first } });
  }

  /**
   * @private
   * @param {number} now
   * @param {string} code
   * @param {string | null} to the member a refused signal was for
   * @param {Output[]} out
   */
  onError(now, code, to, out) {
    if (code === 'replaced' || (REFUSING.has(code) && !this.everJoined)) {
      // Do not send the refused join again on a reconnect; after
      // `replaced`, taking our place back would start a tug of war.
      this.wantJoin = false;
      this.joined = false;
      this.rejoinAt = null;
      out.push({ join_refused: { code } });
    } else if (code === 'shutting_down') {
      // The server is stopping: an outage, as if it had crashed. Nobody
      // left; the links stay, and we join again when a server is back.
      this.joined = false;
      this.rejoinAt = null;
    } else if (REFUSING.has(code) && !this.joined) {
      // Joining again after a lost connection: our previous session may
      // hold the nickname until the server notices it is gone.
      this.rejoinAt = now + this.config.rejoin_delay_ms;
    } else if (code === 'peer_busy' || code === 'peer_away') {
      // A signal to a member was not delivered (its queue is backed up, or
      // it lost its connection and may come back): a link still being set
      // up may have lost an offer, an answer or a candidate, so it is
      // dropped and rebuilt by the rules for a closed link (after the
      // backoff; an away member starts one itself when it is back, and must
      // not find ours in the way). An open link needs no more signals
      // unless it renegotiates, which retries on its own.
      const m = to === null ? undefined : this.find(to);
      if (m?.link && !m.link.open) {
        out.push({ drop: { peer: m.id, sid: m.link.sid } });
        this.closed(now, m, out);
      }
    }
    // Other codes change nothing here.
  }

  /**
   * @private
   * @param {number} now
   * @param {string} from
   * @param {string} sid
   * @param {SignalKind} kind
   * @param {Output[]} out
   */
  onSignal(now, from, sid, kind, out) {
    const m = this.find(from);
    if (!m) return;
    if (m.link?.sid === sid) {
      m.link.heard = true;
      m.link.glareDeadline = null;
      out.push({ forward: { peer: m.id, sid } });
      return;
    }
    if (kind !== 'offer') return; // for a link that is gone
    // Both started a link at once: the one started by the member with the
    // smaller id wins.
    const link = m.link;
    if (link && link.started && !link.open && this.me !== null && this.me < from) {
      // They answer ours as soon as it reaches them; if ours has heard
      // nothing from them meanwhile, it may have been lost.
      if (!link.heard) link.glareDeadline ??= now + this.config.glare_wait_ms;
      return;
    }
    // A new link from them replaces whatever we had.
    this.dropLink(m, out);
    this.setLink(now, m, sid, false, out);
    this.updateState(m, out);
  }

  /**
   * @private
   * @param {number} now
   * @param {Member} m
   * @param {Transport} state
   * @param {Output[]} out
   */
  onTransport(now, m, state, out) {
    const link = m.link;
    if (!link) return;
    if (state === 'connected') {
      link.lost = null;
      link.repairDeadline = null;
    } else if (state === 'disconnected') {
      link.lost = state;
    } else if (!this.config.relays_signals || !this.config.ice_restart) {
      // No way to repair it: it counts as closed.
      out.push({ drop: { peer: m.id, sid: link.sid } });
      this.closed(now, m, out);
      return;
    } else {
      link.lost = state;
      link.repairDeadline ??= now + this.config.repair_timeout_ms;
      // The side that started the link restarts ICE.
      if (link.started) out.push({ restart_ice: { peer: m.id, sid: link.sid } });
    }
    if (state !== 'connected') m.setback = true;
    this.updateState(m, out);
  }

  /**
   * The current link of `m` closed (or was given up).
   * @private
   * @param {number} now
   * @param {Member} m
   * @param {Output[]} out
   */
  closed(now, m, out) {
    const link = m.link;
    if (!link) return;
    m.link = null;
    if (link.verified) out.push({ down: { peer: m.id } });
    // A pair has no server to find each other again: the member is gone.
    if (!this.config.relays_signals) {
      this.list.splice(this.list.indexOf(m), 1);
      out.push({ removed: { peer: m.id, announce: true } });
      return;
    }
    m.setback = true;
    this.updateState(m, out);
    // Without the server, wait: once we are back, the member list says whom
    // to reconnect to.
    if (!this.joined) return;
    if (!m.listed) {
      // Gone, unless it comes back soon.
      m.goneAt = now + this.config.gone_after_ms;
    } else if (this.me !== null && this.me < m.id) {
      const delay = this.backoff(m.relinkAttempt);
      m.relinkAttempt += 1;
      m.relinkAt = now + delay;
    }
  }
}
