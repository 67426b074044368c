// @ts-check
/**
 * A room as seen by one member: the signaling connection, the members, one
 * {@link PeerLink} per member (full mesh) and the message log
 * ({@link History}): ordering, acknowledgements, history for late joiners,
 * typing notices, and the copy kept on this device.
 * No DOM here: the page renders what this emits.
 * @module
 */

import { History } from './history.js';
import { PeerLink } from './peer.js';
import { peerIdFromKey, ProtocolError, randomId } from './protocol.js';
import { Signaling } from './signaling.js';

const RELINK_MIN_MS = 1000;
const RELINK_MAX_MS = 30000;
const KEY_STORAGE_PREFIX = 'peerchat.key.';
/**
 * How long a member the server does not list (yet) and whose connection is
 * down stays shown as reconnecting: about as long as the server holds a
 * member's place after losing its connection.
 */
const GONE_AFTER_MS = 20000;

/**
 * @typedef {'connecting' | 'connected' | 'reconnecting'} MemberState
 * @typedef {{id: string, nick: string, state: MemberState, link: PeerLink | null,
 *   relinkAttempt: number, relinkTimer?: ReturnType<typeof setTimeout>,
 *   goneTimer?: ReturnType<typeof setTimeout>, listed: boolean}} RoomMember
 *   listed: the server lists this member now
 * @typedef {{id: string, seq: number, clock: number, ts: number, text: string,
 *   authorId: string, author: string, own: boolean}} ChatMessage
 * @typedef {{state: 'sent' | 'sending' | 'delivered' | 'waiting' | 'undelivered',
 *   text: string, detail: string}} DeliveryState
 */

/**
 * This tab's member key for a room: kept in localStorage so that a reload
 * or a restart comes back as the same member (and its own messages are
 * recognised), unless another tab holds it, in which case this tab gets a
 * key of its own, for as long as it lives.
 * @param {string} roomId
 * @returns {Promise<{key: string, kept: boolean}>} kept: whether the key
 *   outlives the page (a key that does not is a member that never comes back)
 */
async function memberKey(roomId) {
  const name = KEY_STORAGE_PREFIX + roomId;
  let stored = null;
  try {
    stored = localStorage.getItem(name);
  } catch {
    // Storage may be disabled.
  }
  const key = stored ?? randomId();
  let kept = stored !== null;
  if (!stored) {
    try {
      localStorage.setItem(name, key);
      kept = true;
    } catch {
      // Then this key lasts as long as the page.
    }
  }
  if (!navigator.locks) return { key, kept };
  // Hold a lock on the key while the page lives; a second tab gets its own.
  const held = await new Promise((resolve) => {
    void navigator.locks.request(name, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock ? new Promise(() => {}) : undefined;
    });
  });
  return held ? { key, kept } : { key: randomId(), kept: false };
}

/**
 * Events:
 * - `server` (detail: {state: 'connecting'|'open'|'offline', retryInMs?})
 * - `joined` (detail: {you}) the first time the room is joined
 * - `join-error` (detail: {code, message}) joining failed; pick another nick
 * - `members` the member list or a member's state changed
 * - `notice` (detail: {kind: 'joined'|'left', nick})
 * - `message` (detail: ChatMessage) a message new to this page, ours or
 *   someone else's, live or from history: show it at its place in the order
 * - `delivery` who holds our messages changed: refresh their states
 * - `typing` who is typing changed
 */
export class Room extends EventTarget {
  /**
   * @param {string} roomId
   * @param {string} wsUrl
   * @param {{relayOnly?: boolean,
   *   store?: import('./store.js').Store | null | Promise<import('./store.js').Store | null>}} [options]
   *   relayOnly: connect through a TURN relay only, so peers never learn
   *   this machine's addresses; store: where history is kept on this device
   */
  constructor(roomId, wsUrl, { relayOnly = false, store = null } = {}) {
    super();
    this.roomId = roomId;
    this.relayOnly = relayOnly;
    /** @type {import('./store.js').Store | null} */
    this.store = null;
    /** The store, while it opens. */
    this.storeOpening = Promise.resolve(store);
    /** @type {string | null} */
    this.nick = null;
    /** @type {string | null} our member key */
    this.key = null;
    /** @type {string} our peer id, derived from the key */
    this.selfId = '';
    /** Whether the server has us in the room right now. */
    this.joinedNow = false;
    this.everJoined = false;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {Map<string, RoomMember>} by peer id, in join order */
    this.members = new Map();
    /** @type {Map<string, string>} last known nickname of every author seen */
    this.nicks = new Map();
    this.history = new History('');
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.typingTimer = undefined;
    this.saveQueued = false;
    this.signaling = new Signaling(wsUrl);
    this.signaling.addEventListener('state', (e) => this.onServerState(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('message', (e) => this.onServerMessage(/** @type {CustomEvent} */ (e).detail));
  }

  /**
   * Picks our member key and loads the history kept on this device.
   * @returns {Promise<ChatMessage[]>} the kept messages, in order
   */
  async open() {
    const { key, kept } = await memberKey(this.roomId);
    this.key = key;
    this.selfId = await peerIdFromKey(this.roomId, this.key);
    this.history = new History(this.selfId);
    // Each member keeps its own history; one whose key dies with the page
    // keeps none.
    this.store = kept ? await this.storeOpening : null;
    if (!this.store) return [];
    this.store.setMember(this.selfId);
    try {
      const saved = await this.store.load(this.roomId);
      const restored = this.history.restore(saved);
      if (restored.length < saved.messages.length) void this.store.trim(this.roomId, this.history.messages());
      for (const m of restored) this.nicks.set(m.author, m.nick);
      return restored.map((m) => this.view(m));
    } catch (e) {
      console.warn('peerchat: could not read the history kept on this device', e);
      return [];
    }
  }

  /**
   * Opens the signaling connection ahead of joining, so that joining takes
   * one message. If it drops before the page joins, it is not reopened
   * until then.
   */
  preconnect() {
    if (this.signaling.state === 'offline' && !this.nick) this.signaling.start();
  }

  /**
   * Joins (or retries joining) under `nick`.
   * @param {string} nick
   */
  join(nick) {
    this.nick = nick;
    if (this.signaling.state === 'open') this.sendJoin();
    else if (this.signaling.state === 'offline') this.signaling.start();
  }

  /**
   * Sends a chat message to every member whose channel is open; the others
   * get it when their channel opens (the history sync).
   * @param {string} text
   * @returns {ChatMessage}
   */
  send(text) {
    let sent;
    try {
      sent = this.history.send({
        id: randomId(),
        nick: this.nick ?? '',
        text,
        ts: Date.now(),
        recipients: [...this.members.keys()],
      });
    } catch (e) {
      if (e instanceof ProtocolError && e.code === 'too_large') {
        throw new ProtocolError('too_large', 'This message is over 16 KiB; messages may be at most 16 KiB.');
      }
      throw e;
    }
    this.store?.add(this.roomId, [sent.message]);
    this.saveState();
    for (const member of this.members.values()) this.sendTo(member, sent.envelope);
    return this.view(sent.message);
  }

  /** Tells the others that we are typing (at most every few seconds). */
  typed() {
    const envelope = this.history.typed(Date.now());
    if (!envelope) return;
    for (const member of this.members.values()) this.sendTo(member, envelope);
  }

  /** The nicknames of those typing now. */
  typingNicks() {
    return this.history.typing(Date.now()).map((id) => this.nickOf(id));
  }

  /**
   * Where one of our messages stands.
   * @param {number} seq
   * @returns {DeliveryState}
   */
  delivery(seq) {
    const { acked, waiting } = this.history.delivery(seq);
    const names = (/** @type {string[]} */ ids) => ids.map((id) => this.nickOf(id)).join(', ');
    const gone = waiting.filter((id) => !this.members.has(id));
    const here = waiting.filter((id) => this.members.has(id));
    if (acked.length === 0 && waiting.length === 0) {
      return { state: 'sent', text: 'Sent', detail: 'No one else was in the room.' };
    }
    if (waiting.length === 0) return { state: 'delivered', text: 'Delivered', detail: `Delivered to ${names(acked)}.` };
    const parts = [];
    if (acked.length > 0) parts.push(`Delivered to ${names(acked)}.`);
    if (here.length > 0) parts.push(`Waiting for ${names(here)}.`);
    if (gone.length > 0) parts.push(`Not delivered to ${names(gone)}, who left; they get it if they come back.`);
    if (here.length === 0) return { state: 'undelivered', text: `Not delivered to ${names(gone)}`, detail: parts.join(' ') };
    if (acked.length === 0 && gone.length === 0) return { state: 'sending', text: 'Sending…', detail: parts.join(' ') };
    return { state: 'waiting', text: `Waiting for ${names(here)}`, detail: parts.join(' ') };
  }

  /**
   * Forgets this room's history on this device; messages sent before now
   * do not come back from the others.
   */
  clearHistory() {
    this.history.clear();
    this.store?.clear(this.roomId);
    this.saveStateNow();
  }

  /** Whether the server hands out a TURN relay. */
  get hasRelay() {
    return this.iceServers.some((s) => [s.urls].flat().some((u) => /^turns?:/i.test(u)));
  }

  /**
   * Closes every connection. With `forGood`, the others are told at once;
   * otherwise the server keeps our place for a few seconds (a reload comes
   * back as the same member).
   * @param {boolean} [forGood]
   */
  leave(forGood = false) {
    this.store?.flush(this.roomId);
    if (this.saveQueued) this.saveStateNow();
    if (forGood) this.signaling.leave();
    else this.signaling.stop();
    for (const member of this.members.values()) this.dropLink(member);
    this.members.clear();
  }

  /** @private */
  sendJoin() {
    if (this.nick) this.signaling.join(this.roomId, this.nick, this.key ?? undefined);
  }

  /**
   * @private
   * @param {{state: 'connecting'|'open'|'offline', retryInMs?: number}} detail
   */
  onServerState(detail) {
    if (detail.state === 'offline' && !this.nick && !this.everJoined) {
      // A preconnection that dropped (or timed out waiting for a join).
      this.signaling.stop();
      return;
    }
    if (detail.state === 'open') this.sendJoin();
    if (detail.state === 'offline') this.joinedNow = false;
    this.dispatchEvent(new CustomEvent('server', { detail }));
  }

  /**
   * @private
   * @param {import('./protocol.js').ServerMessage} msg
   */
  onServerMessage(msg) {
    switch (msg.type) {
      case 'joined':
        this.onJoined(msg);
        break;
      case 'peer_joined': {
        const known = this.members.get(msg.peer.id);
        if (known) {
          // The same member back (they start a new connection if needed),
          // perhaps under a new nickname.
          known.nick = msg.peer.nick;
          known.listed = true;
          clearTimeout(known.goneTimer);
          this.nicks.set(known.id, known.nick);
        } else {
          this.addMember(msg.peer, true);
        }
        this.changed();
        break;
      }
      case 'peer_left': {
        const member = this.members.get(msg.id);
        if (member) this.removeMember(member, true);
        break;
      }
      case 'signal':
        this.onSignal(msg.from, msg.payload);
        break;
      case 'error':
        this.onServerError(msg.code, msg.message);
        break;
    }
  }

  /**
   * @private
   * @param {Extract<import('./protocol.js').ServerMessage, {type: 'joined'}>} msg
   */
  onJoined(msg) {
    if (msg.you.id !== this.selfId) {
      // A server that does not derive ids from keys: our messages are
      // numbered under the id it gave.
      console.warn('peerchat: the server gave an id not derived from our key');
      this.selfId = msg.you.id;
      const kept = this.history.save();
      this.history = new History(this.selfId);
      this.history.restore(kept);
    }
    this.joinedNow = true;
    this.nick = msg.you.nick;
    this.iceServers = msg.ice_servers;
    const listed = new Map(msg.members.map((m) => [m.id, m]));
    // Members who have not come back to the server yet keep their
    // connection while it stays open, or a little while to come back.
    for (const member of this.members.values()) {
      if (listed.has(member.id)) continue;
      member.listed = false;
      if (!member.link?.isOpen) this.startGoneTimer(member);
    }
    for (const m of msg.members) {
      const member = this.addMember(m, this.everJoined);
      member.listed = true;
      member.nick = m.nick;
      clearTimeout(member.goneTimer);
      // An open connection survives the server going away and coming
      // back; a new one is started by us, the (re)joining side.
      if (!member.link) member.link = this.newLink(member, null);
      else if (member.link.state === 'reconnecting') member.link.repair();
    }
    if (!this.everJoined) {
      this.everJoined = true;
      this.dispatchEvent(new CustomEvent('joined', { detail: { you: msg.you, resumed: msg.resumed } }));
    }
    this.changed();
  }

  /**
   * @private
   * @param {string} code
   * @param {string} message
   */
  onServerError(code, message) {
    const joining = ['nick_taken', 'bad_nick', 'room_full', 'bad_room', 'bad_key'].includes(code);
    if (joining && !this.everJoined) {
      // Do not send the refused nickname again on a reconnect.
      this.nick = null;
      this.dispatchEvent(new CustomEvent('join-error', { detail: { code, message } }));
    } else if (joining && !this.joinedNow) {
      // Rejoining after a reconnect: try again shortly.
      setTimeout(() => {
        if (!this.joinedNow && this.signaling.state === 'open') this.sendJoin();
      }, 2000);
    } else if (code === 'shutting_down') {
      // The server is stopping: an outage, as if it had crashed. Nobody
      // left; the connections to the others stay up, and we rejoin when a
      // server is back.
      this.joinedNow = false;
    } else if (code !== 'peer_away') {
      console.warn(`peerchat: server error ${code}: ${message}`);
    }
  }

  /**
   * @private
   * @param {{id: string, nick: string}} peer
   * @param {boolean} announce
   * @returns {RoomMember}
   */
  addMember(peer, announce) {
    const existing = this.members.get(peer.id);
    if (existing) return existing;
    /** @type {RoomMember} */
    const member = { id: peer.id, nick: peer.nick, state: 'connecting', link: null, relinkAttempt: 0, listed: true };
    this.members.set(peer.id, member);
    this.nicks.set(peer.id, peer.nick);
    if (announce) this.dispatchEvent(new CustomEvent('notice', { detail: { kind: 'joined', nick: peer.nick } }));
    return member;
  }

  /**
   * @private
   * @param {RoomMember} member
   * @param {boolean} announce
   */
  removeMember(member, announce) {
    this.dropLink(member);
    this.members.delete(member.id);
    this.history.linkClosed(member.id);
    if (announce) this.dispatchEvent(new CustomEvent('notice', { detail: { kind: 'left', nick: member.nick } }));
    this.changed();
    this.dispatchEvent(new Event('delivery'));
    this.dispatchEvent(new Event('typing'));
  }

  /**
   * @private
   * @param {RoomMember} member
   */
  dropLink(member) {
    clearTimeout(member.relinkTimer);
    clearTimeout(member.goneTimer);
    const link = member.link;
    member.link = null;
    link?.close();
  }

  /**
   * @private
   * @param {RoomMember | undefined} member
   * @param {string | null} sid null to start a connection, else the offer's id
   * @returns {PeerLink | null}
   */
  newLink(member, sid) {
    if (!member || !this.selfId) return null;
    const peerId = member.id;
    const link = new PeerLink({
      selfId: this.selfId,
      peerId,
      iceServers: this.iceServers,
      sid,
      sendSignal: (payload) => this.signaling.signal(peerId, payload),
      relayOnly: this.relayOnly,
    });
    link.addEventListener('state', (e) => {
      if (member.link !== link) return;
      const state = /** @type {CustomEvent} */ (e).detail;
      if (state !== 'closed') {
        member.state = state;
        this.changed();
      }
    });
    link.addEventListener('open', () => {
      if (member.link !== link) return;
      member.relinkAttempt = 0;
      this.apply(this.history.linkOpened(member.id));
    });
    link.addEventListener('message', (e) => {
      if (member.link === link) this.onPeerMessage(member, /** @type {CustomEvent} */ (e).detail);
    });
    link.addEventListener('closed', () => {
      if (member.link === link) this.onLinkClosed(member);
    });
    return link;
  }

  /**
   * A member's connection ended. While the server still lists them, the
   * side with the smaller peer id starts a new one after a backoff; with no
   * server to ask, they count as gone.
   * @private
   * @param {RoomMember} member
   */
  onLinkClosed(member) {
    member.link = null;
    this.history.linkClosed(member.id);
    member.state = 'reconnecting';
    this.changed();
    // Without the server, wait: once we are back, the member list says
    // whom to reconnect to.
    if (!this.joinedNow) return;
    if (!member.listed) {
      this.startGoneTimer(member);
      return;
    }
    if (this.selfId < member.id) {
      const base = Math.min(RELINK_MAX_MS, RELINK_MIN_MS * 2 ** member.relinkAttempt);
      member.relinkAttempt += 1;
      member.relinkTimer = setTimeout(() => {
        if (this.members.get(member.id) === member && !member.link) member.link = this.newLink(member, null);
      }, base / 2 + Math.random() * (base / 2));
    }
  }

  /**
   * A member the server does not list and who has no connection: gone,
   * unless they come back soon.
   * @private
   * @param {RoomMember} member
   */
  startGoneTimer(member) {
    clearTimeout(member.goneTimer);
    member.goneTimer = setTimeout(() => {
      if (this.members.get(member.id) === member && !member.listed && !member.link?.isOpen) {
        this.removeMember(member, true);
      }
    }, GONE_AFTER_MS);
  }

  /**
   * @private
   * @param {string} from
   * @param {Record<string, unknown>} payload
   */
  onSignal(from, payload) {
    const member = this.members.get(from);
    if (!member || typeof payload.sid !== 'string') return;
    const signal = /** @type {import('./peer.js').SignalPayload} */ (payload);
    if (member.link?.sid === signal.sid) {
      member.link.handleSignal(signal);
    } else if (signal.description?.type === 'offer') {
      // Both sides started a connection at once: the one we started wins
      // if our id is the smaller; otherwise theirs replaces ours.
      const link = member.link;
      if (link && link.initiator && !link.isOpen && this.selfId < member.id) return;
      // A new connection from them replaces whatever we had.
      this.dropLink(member);
      member.link = this.newLink(member, signal.sid);
      member.link?.handleSignal(signal);
    }
  }

  /**
   * @private
   * @param {RoomMember} member
   * @param {string} text
   */
  onPeerMessage(member, text) {
    let effects;
    try {
      effects = this.history.handle(member.id, member.nick, text, Date.now());
    } catch (e) {
      console.warn('peerchat: ignoring a malformed message from', member.nick, e);
      return;
    }
    this.apply(effects);
  }

  /**
   * Carries out what the log asks for.
   * @private
   * @param {import('./history.js').Effect[]} effects
   */
  apply(effects) {
    /** @type {import('./history.js').Message[]} */
    const added = [];
    let acked = false;
    let typing = false;
    for (const effect of effects) {
      if ('added' in effect) added.push(effect.added);
      else if ('send' in effect) {
        const to = this.members.get(effect.send.to);
        if (to) this.sendTo(to, effect.send.text);
      } else if ('acked' in effect) acked = true;
      else if ('typing' in effect) typing = true;
    }
    if (added.length > 0) {
      this.store?.add(this.roomId, added);
      for (const m of added) {
        if (m.author !== this.selfId && !this.nicks.has(m.author)) this.nicks.set(m.author, m.nick);
        this.dispatchEvent(new CustomEvent('message', { detail: this.view(m) }));
      }
      typing = true;
    }
    if (acked) {
      this.saveState();
      this.dispatchEvent(new Event('delivery'));
    }
    if (typing) {
      this.dispatchEvent(new Event('typing'));
      this.scheduleTypingRefresh();
    }
  }

  /** @private */
  scheduleTypingRefresh() {
    clearTimeout(this.typingTimer);
    const next = this.history.typingDeadline(Date.now());
    if (next !== null) {
      this.typingTimer = setTimeout(() => {
        this.dispatchEvent(new Event('typing'));
        this.scheduleTypingRefresh();
      }, Math.max(0, next - Date.now()) + 10);
    }
  }

  /**
   * @private
   * @param {RoomMember} member
   * @param {string} envelope
   */
  sendTo(member, envelope) {
    if (!member.link?.isOpen) return;
    try {
      member.link.send(envelope);
    } catch (e) {
      // The sync when the channel opens again makes up for it.
      console.warn('peerchat: send failed', member.nick, e);
    }
  }

  /**
   * Saves delivery state soon, once for any number of changes meanwhile.
   * @private
   */
  saveState() {
    if (!this.store || this.saveQueued) return;
    this.saveQueued = true;
    setTimeout(() => this.saveStateNow(), 200);
  }

  /** @private */
  saveStateNow() {
    this.saveQueued = false;
    if (!this.store) return;
    const { recipients, acks, cleared } = this.history.save();
    this.store.saveState(this.roomId, { recipients, acks, cleared });
  }

  /**
   * @private
   * @param {string} id
   */
  nickOf(id) {
    return this.members.get(id)?.nick ?? this.nicks.get(id) ?? id.slice(0, 6);
  }

  /**
   * @private
   * @param {import('./history.js').Message} m
   * @returns {ChatMessage}
   */
  view(m) {
    const own = m.author === this.selfId;
    return { id: m.id, seq: m.seq, clock: m.clock, ts: m.ts, text: m.text, authorId: m.author, author: m.nick, own };
  }

  /** @private */
  changed() {
    this.dispatchEvent(new Event('members'));
  }
}
