// @ts-check
/**
 * A room as seen by one member: the signaling connection, the members and
 * one {@link PeerLink} per member (full mesh), chat messages in and out.
 * No DOM here: the page renders what this emits.
 * @module
 */

import { PeerLink } from './peer.js';
import {
  chatEnvelope,
  MAX_TEXT_BYTES,
  parsePeerMessage,
  ProtocolError,
  randomId,
  utf8Length,
} from './protocol.js';
import { Signaling } from './signaling.js';

/** Messages kept per member while its channel is not open. */
const MAX_OUTBOX = 1000;
/** Message ids remembered to drop duplicates. */
const MAX_SEEN_IDS = 5000;
const RELINK_MIN_MS = 1000;
const RELINK_MAX_MS = 30000;

/**
 * @typedef {'connecting' | 'connected' | 'reconnecting'} MemberState
 * @typedef {{id: string, nick: string, state: MemberState, link: PeerLink | null,
 *   outbox: string[], relinkAttempt: number, relinkTimer?: ReturnType<typeof setTimeout>,
 *   listed: boolean}} RoomMember listed: the server knows this member (by this id)
 * @typedef {{id: string, ts: number, text: string, authorId: string, author: string, own: boolean}} ChatMessage
 */

/**
 * Events:
 * - `server` (detail: {state: 'connecting'|'open'|'offline', retryInMs?})
 * - `joined` (detail: {you}) the first time the room is joined
 * - `join-error` (detail: {code, message}) joining failed; pick another nick
 * - `members` the member list or a member's state changed
 * - `notice` (detail: {kind: 'joined'|'left', nick})
 * - `message` (detail: ChatMessage) a chat message from someone else
 */
export class Room extends EventTarget {
  /**
   * @param {string} roomId
   * @param {string} wsUrl
   * @param {{relayOnly?: boolean}} [options] relayOnly: connect through a
   *   TURN relay only, so peers never learn this machine's addresses
   */
  constructor(roomId, wsUrl, { relayOnly = false } = {}) {
    super();
    this.roomId = roomId;
    this.relayOnly = relayOnly;
    /** @type {string | null} */
    this.nick = null;
    /** @type {string | null} our peer id while joined */
    this.selfId = null;
    this.everJoined = false;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {Map<string, RoomMember>} by peer id, in join order */
    this.members = new Map();
    /** @type {Set<string>} */
    this.seen = new Set();
    this.signaling = new Signaling(wsUrl);
    this.signaling.addEventListener('state', (e) => this.onServerState(/** @type {CustomEvent} */ (e).detail));
    this.signaling.addEventListener('message', (e) => this.onServerMessage(/** @type {CustomEvent} */ (e).detail));
  }

  /**
   * Joins (or retries joining) under `nick`.
   * @param {string} nick
   */
  join(nick) {
    this.nick = nick;
    if (this.signaling.state === 'open') this.signaling.join(this.roomId, nick);
    else if (this.signaling.state === 'offline') this.signaling.start();
  }

  /**
   * Sends a chat message to every member; those whose channel is not open
   * yet get it when it opens.
   * @param {string} text
   * @returns {ChatMessage}
   */
  send(text) {
    if (text.trim().length === 0) throw new ProtocolError('bad_message', 'the message is empty');
    const size = utf8Length(text);
    if (size > MAX_TEXT_BYTES) {
      throw new ProtocolError(
        'too_large',
        `This message is ${(size / 1024).toFixed(1)} KiB; messages may be at most 16 KiB.`,
      );
    }
    const chat = { id: randomId(), ts: Date.now(), text };
    this.remember(this.nick ?? '', chat.id);
    const envelope = chatEnvelope(chat);
    for (const member of this.members.values()) this.deliver(member, envelope);
    return { ...chat, authorId: this.selfId ?? '', author: this.nick ?? '', own: true };
  }

  /** Whether the server hands out a TURN relay. */
  get hasRelay() {
    return this.iceServers.some((s) => [s.urls].flat().some((u) => /^turns?:/i.test(u)));
  }

  /** Leaves the room and closes every connection. */
  leave() {
    this.signaling.stop();
    for (const member of this.members.values()) this.dropLink(member);
    this.members.clear();
  }

  /**
   * @private
   * @param {{state: 'connecting'|'open'|'offline', retryInMs?: number}} detail
   */
  onServerState(detail) {
    if (detail.state === 'open' && this.nick) this.signaling.join(this.roomId, this.nick);
    if (detail.state === 'offline') this.selfId = null;
    this.dispatchEvent(new CustomEvent('server', { detail }));
  }

  /**
   * @private
   * @param {import('./protocol.js').ServerMessage} msg
   */
  onServerMessage(msg) {
    switch (msg.type) {
      case 'joined': {
        this.selfId = msg.you.id;
        this.nick = msg.you.nick;
        this.iceServers = msg.ice_servers;
        const listed = new Set(msg.members.map((m) => m.id));
        // After a reconnect, members who have not come back yet keep their
        // connection while it stays open.
        for (const member of [...this.members.values()]) {
          if (listed.has(member.id) || msg.members.some((m) => m.nick === member.nick)) continue;
          if (member.link?.isOpen) member.listed = false;
          else this.removeMember(member, true);
        }
        // We are the newcomer, under a new peer id: we start a fresh
        // connection to everyone listed.
        for (const m of msg.members) {
          const member = this.addMember(m, this.everJoined);
          this.dropLink(member);
          member.link = this.newLink(member, null);
        }
        if (!this.everJoined) {
          this.everJoined = true;
          this.dispatchEvent(new CustomEvent('joined', { detail: { you: msg.you } }));
        }
        this.changed();
        break;
      }
      case 'peer_joined':
        this.addMember(msg.peer, true);
        this.changed();
        break;
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
   * @param {string} code
   * @param {string} message
   */
  onServerError(code, message) {
    const joining = ['nick_taken', 'bad_nick', 'room_full', 'bad_room'].includes(code);
    if (joining && !this.everJoined) {
      // Do not send the refused nickname again on a reconnect.
      this.nick = null;
      this.dispatchEvent(new CustomEvent('join-error', { detail: { code, message } }));
    } else if (joining && this.selfId === null) {
      // Rejoining after a reconnect: our old session may still hold the
      // nickname until the server notices it is gone; try again shortly.
      setTimeout(() => {
        if (this.selfId === null && this.nick && this.signaling.state === 'open') {
          this.signaling.join(this.roomId, this.nick);
        }
      }, 2000);
    } else {
      console.warn(`peerchat: server error ${code}: ${message}`);
    }
  }

  /**
   * Adds a member, or recognises a known one who came back with a new peer
   * id (same nickname) after the server connection was lost.
   * @private
   * @param {{id: string, nick: string}} peer
   * @param {boolean} announce
   * @returns {RoomMember}
   */
  addMember(peer, announce) {
    const existing = this.members.get(peer.id);
    if (existing) return existing;
    const previous = [...this.members.values()].find((m) => m.nick === peer.nick);
    if (previous) {
      this.members.delete(previous.id);
      this.dropLink(previous);
      previous.id = peer.id;
      previous.listed = true;
      previous.state = 'reconnecting';
      this.members.set(peer.id, previous);
      return previous;
    }
    /** @type {RoomMember} */
    const member = {
      id: peer.id,
      nick: peer.nick,
      state: 'connecting',
      link: null,
      outbox: [],
      relinkAttempt: 0,
      listed: true,
    };
    this.members.set(peer.id, member);
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
    if (announce) this.dispatchEvent(new CustomEvent('notice', { detail: { kind: 'left', nick: member.nick } }));
    this.changed();
  }

  /**
   * @private
   * @param {RoomMember} member
   */
  dropLink(member) {
    clearTimeout(member.relinkTimer);
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
    if (!member || this.selfId === null) return null;
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
      for (const text of member.outbox.splice(0)) link.send(text);
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
    // With no server to ask, or one that does not know them, they are gone.
    if (this.selfId === null || !member.listed) {
      this.removeMember(member, true);
      return;
    }
    member.state = 'reconnecting';
    this.changed();
    if (this.selfId < member.id) {
      const base = Math.min(RELINK_MAX_MS, RELINK_MIN_MS * 2 ** member.relinkAttempt);
      member.relinkAttempt += 1;
      member.relinkTimer = setTimeout(() => {
        if (this.members.get(member.id) === member && !member.link) member.link = this.newLink(member, null);
      }, base / 2 + Math.random() * (base / 2));
    }
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
    let msg;
    try {
      msg = parsePeerMessage(text);
    } catch (e) {
      console.warn('peerchat: ignoring a malformed message from', member.nick, e);
      return;
    }
    // Ids are unique per author: another member reusing one cannot hide or
    // replace a message.
    if (msg.kind !== 'chat' || !this.remember(member.nick, msg.id)) return;
    /** @type {ChatMessage} */
    const chat = { id: msg.id, ts: msg.ts, text: msg.text, authorId: member.id, author: member.nick, own: false };
    this.dispatchEvent(new CustomEvent('message', { detail: chat }));
  }

  /**
   * @private
   * @param {RoomMember} member
   * @param {string} envelope
   */
  deliver(member, envelope) {
    if (member.link?.isOpen) {
      try {
        member.link.send(envelope);
        return;
      } catch (e) {
        console.warn('peerchat: send failed; keeping the message for later', e);
      }
    }
    if (member.outbox.length >= MAX_OUTBOX) member.outbox.shift();
    member.outbox.push(envelope);
  }

  /**
   * Records a message; false if it was seen before.
   * @private
   * @param {string} author
   * @param {string} id
   */
  remember(author, id) {
    const key = `${author}\u0000${id}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > MAX_SEEN_IDS) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }

  /** @private */
  changed() {
    this.dispatchEvent(new Event('members'));
  }
}
