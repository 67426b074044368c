// @ts-check
/**
 * A room as seen by one member: the signaling connection, the members, one
 * {@link PeerLink} per member (full mesh) and the message log
 * ({@link History}): ordering, acknowledgements, history for late joiners,
 * typing notices, and the copy kept on this device.
 *
 * This is a driver: the rules of the mesh (who starts a connection, glare,
 * repairs, presence without the server, rejoining) are {@link Mesh}'s, and
 * those of the log are {@link History}'s. It feeds them what the server,
 * the links and the page say, with the time, and carries out what they
 * answer. No DOM here: the page renders what this emits.
 * @module
 */

import {
  base64urlDecode,
  base64urlEncode,
  buildHello,
  generateIdentity,
  groupDigits,
  helloEnvelope,
  parseHello,
  publicKeyFromWire,
  publicKeyToWire,
  Refusal,
  RoomCrypto,
  roomContext,
  safetyNumber,
  SignalKey,
  signWith,
  verifyHello,
  verifySignature,
} from './e2e.js';
import { KeyStore } from './keystore.js';
import { History, isShown } from './history.js';
import { Inbox, lastAcks } from './inbox.js';
import { Mesh } from './mesh.js';
import { PeerLink } from './peer.js';
import { PrivateChats, privateScope } from './privates.js';
import { unwrapPrivate } from './private.js';
import { peerIdFromKey, ProtocolError, randomId } from './protocol.js';
import { Signaling } from './signaling.js';

const KEY_STORAGE_PREFIX = 'peerchat.key.';
/** A refusal of the same kind from the same member is told at most this often. */
const REFUSAL_NOTICE_MS = 60_000;
/** The errors that may answer a `rename` (`unknown_type`: a server without it). */
const RENAME_ERRORS = new Set(['nick_taken', 'bad_nick', 'bad_message', 'unknown_type', 'not_joined', 'rate_limited']);
/**
 * Envelopes kept from a member while its hello is being checked; one that
 * sends more before its hello verified is dropped.
 */
const MAX_BEFORE_HELLO = 64;

/**
 * `file` channels kept from a member while its hello is being checked (it
 * may have verified ours first and asked at once); more are closed.
 */
const MAX_FILE_CHANNELS_BEFORE_HELLO = 8;

/**
 * @typedef {import('./e2e.js').PublicKey} PublicKey
 * @typedef {{key: PublicKey, nick: string, verified: boolean, changed: boolean}} MemberIdentity
 *   a member's identity key, as its hello verified it this session: the
 *   nickname it was pinned under, whether the user verified it (safety
 *   numbers compared), and whether it is not the key pinned earlier for
 *   that nickname (its safety number changed)
 * @typedef {{chain: Promise<unknown>, waiting: number, key: PublicKey | null, failed: boolean}} Gate
 *   a link's hello state: envelopes wait in `chain` (at most
 *   MAX_BEFORE_HELLO until the hello verified); `key` once it did
 */

/**
 * @param {PublicKey} a
 * @param {PublicKey} b
 */
function sameKey(a, b) {
  return a.alg === b.alg && a.key.length === b.key.length && a.key.every((x, i) => x === b.key[i]);
}

/**
 * What a refused signal means, for people.
 * @param {string} nick
 * @param {Refusal} refusal
 */
export function refusalText(nick, refusal) {
  switch (refusal.code) {
    case 'tampered':
      return `A signal from ${nick} was altered in transit and refused (or ${nick}’s room link has another secret).`;
    case 'malformed':
      return `A signal from ${nick} was malformed and refused.`;
    case 'clock_skew': {
      const minutes = Math.ceil(Math.abs(refusal.offsetMs ?? 0) / 60000);
      return `${nick}’s clock is ${minutes} minutes off; signals from ${nick} are refused.`;
    }
    default:
      return `An earlier signal from ${nick} was replayed and refused.`;
  }
}

/**
 * @typedef {import('./mesh.js').LinkState} MemberState
 * @typedef {{id: string, nick: string, state: MemberState, link: PeerLink | null, gate: Gate | null,
 *   up: boolean, early: ((up: boolean) => void)[]}} RoomMember
 *   `up`: its channel is open and its hello verified: chat may flow;
 *   `early`: the `file` channels on its current link that wait for its
 *   hello, told whether it verified
 * @typedef {{id: string, seq: number, clock: number, ts: number, text: string,
 *   authorId: string, author: string, own: boolean, relayedBy: string | null,
 *   file?: import('./protocol.js').FileMeta, re?: import('./protocol.js').EntryRef}} ChatMessage
 *   `relayedBy`: the member who relayed it, while its author's key is not
 *   confirmed ("relayed by X, not yet verified"); `re`: the entry a reply
 *   answers
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
 * - `about` (detail: the log's Message) an edit, deletion, reaction or room
 *   name new to this page, ours or someone else's: refresh what it changes
 *   (its `re`, or the room's name)
 * - `delivery` who holds our messages changed: refresh their states
 * - `typing` who is typing changed
 * - `refused` (detail: {from, nick, code, text}) a signal was refused (at
 *   most one a minute per member and kind)
 * - `not-verified` (detail: {nick, reason}) a member's hello did not verify:
 *   the connection to it was closed
 * - `forged` (detail: {author, by, count}) messages attributed to `author`,
 *   from `by`, were refused: their signatures do not verify
 * - `message-verified` (detail: {authorId, seq}) a relayed message is
 *   verified now (its author's hello confirmed its key)
 * - `message-removed` (detail: {authorId, seq, author, by}) a relayed message
 *   was forged (its author's hello showed another key): take it off
 * - `key-changed` (detail: {id, nick}) a member's identity key is not the one
 *   pinned for its nickname: its safety number changed (show it
 *   prominently); an earlier verification is reset
 * - `no-relay` (detail: the relay's error, or null) relay-only, and no relay
 *   address could be had: no connection can be made
 */
export class Room extends EventTarget {
  /**
   * @param {string} roomId
   * @param {string} wsUrl
   * @param {{secret: Uint8Array, relayOnly?: boolean,
   *   store?: import('./store.js').Store | null | Promise<import('./store.js').Store | null>}} options
   *   secret: the room's secret, from the link's fragment (never sent to
   *   the server); relayOnly: connect through a TURN relay only, so peers
   *   never learn this machine's addresses; store: where history is kept
   *   on this device
   */
  constructor(roomId, wsUrl, { secret, relayOnly = false, store = null }) {
    super();
    this.roomId = roomId;
    /** The signal key, derived while the page does other things. */
    this.signalKey = SignalKey.derive(secret, roomContext(roomId));
    /** @type {RoomCrypto | null} seals and opens signals, once our id is known */
    this.crypto = null;
    /** Server messages are handled one after another, signals once opened. */
    this.serverQueue = Promise.resolve();
    /** @type {Map<string, number>} when a refusal was last told, by member and kind */
    this.refusalsTold = new Map();
    /** @type {KeyStore | null} identity and pins, once open */
    this.keystore = null;
    /**
     * This browser's identity key, loaded (or made) while the page does
     * other things.
     * @type {Promise<import('./e2e.js').Identity>}
     */
    this.identity = KeyStore.open()
      .catch(() => null)
      .then((keystore) => {
        this.keystore = keystore;
        return keystore ? keystore.identity() : generateIdentity();
      });
    /** @type {Map<string, MemberIdentity>} each member's identity, by peer id, this session */
    this.identities = new Map();
    this.relayOnly = relayOnly;
    /** @type {import('./store.js').Store | null} */
    this.store = null;
    /** The store, while it opens. */
    this.storeOpening = Promise.resolve(store);
    /** @type {string | null} */
    this.nick = null;
    /** a `rename` of ours waits for its answer */
    this.renaming = false;
    /** @type {string | null} our member key */
    this.key = null;
    /** @type {string} our peer id, derived from the key */
    this.selfId = '';
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** The mesh rules. */
    this.mesh = new Mesh();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.meshTimer = undefined;
    /** @type {{you: {id: string, nick: string}, resumed: boolean} | null} the last `joined` */
    this.lastJoined = null;
    /** @type {Map<string, RoomMember>} by peer id, in join order */
    this.members = new Map();
    /** @type {Map<string, string>} last known nickname of every author seen */
    this.nicks = new Map();
    this.history = new History('');
    /** @type {Promise<unknown>} our messages are signed one after another */
    this.sending = Promise.resolve();
    /** @type {{alg: string, key: string} | null} our identity key, once loaded */
    this.ownKey = null;
    void this.identity.then(
      (identity) => {
        this.ownKey = publicKeyToWire(identity.publicKey);
        this.history.setIdentity(roomContext(this.roomId), this.ownKey);
        this.privates?.setOwnKey(this.ownKey);
      },
      (e) => console.warn('peerchat: no identity key', e),
    );
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.typingTimer = undefined;
    this.saveQueued = false;
    /** @type {PrivateChats | null} private conversations, once our id and key are known */
    this.privates = null;
    /** @type {import('./files.js').Files | null} file transfers, once the page sets them up */
    this.files = null;
    /** @type {Inbox<RoomMember>} envelopes from peers, handled in batches */
    this.inbox = new Inbox((batch) => this.onPeerMessages(batch));
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
    this.crypto = new RoomCrypto(await this.signalKey, this.selfId);
    this.history = this.newHistory(this.selfId);
    // Each member keeps its own history; one whose key dies with the page
    // keeps none.
    this.store = kept ? await this.storeOpening : null;
    // Our identity key loads beside this (it is needed to sign, once a
    // channel opens): joining does not wait for the key store.
    this.privates = new PrivateChats(this, this.selfId, this.ownKey);
    if (!this.store) return [];
    this.store.setMember(this.selfId);
    try {
      const saved = await this.store.load(this.roomId);
      const restored = this.history.restore(saved);
      if (restored.length < saved.messages.length) void this.store.trim(this.roomId, this.history.messages());
      for (const m of restored) this.nicks.set(m.author, m.nick);
      return restored.filter(isShown).map((m) => this.view(m));
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
   * Asks the server for a new nickname in the room: answered by a
   * `renamed` event (then {@link Room#nick} is the new one) or a
   * `rename-error` event.
   * @param {string} nick
   */
  rename(nick) {
    this.renaming = true;
    this.signaling.rename(nick);
  }

  /**
   * Joins (or retries joining) under `nick`.
   * @param {string} nick
   */
  join(nick) {
    this.nick = nick;
    this.feed({ join: {} });
    if (this.signaling.state === 'offline') this.signaling.start();
  }

  /** Whether we were ever in the room. */
  get everJoined() {
    return this.mesh.everJoined;
  }

  /**
   * Sends a chat message to every member whose channel is open; the others
   * get it when their channel opens (the history sync).
   * @param {string} text
   * @returns {Promise<ChatMessage>} our message, once signed and sent
   */
  send(text) {
    const message = { id: randomId(), nick: this.nick ?? '', text, ts: Date.now() };
    return this.sendEntry(() => this.history.draft(message));
  }

  /**
   * Offers a file to the room: its offer, a log entry, goes to every member
   * whose channel is open (the others get it from the history sync).
   * @param {import('./protocol.js').FileMeta} file
   * @returns {Promise<ChatMessage>}
   */
  sendFile(file) {
    const offer = { id: randomId(), nick: this.nick ?? '', file, ts: Date.now() };
    return this.sendEntry(() => this.history.draftFile(offer));
  }

  /**
   * Signs and sends a log entry of ours, drafted by `drafted` (called again
   * if another entry took its number meanwhile).
   * @private
   * @param {() => import('./history.js').Draft} drafted
   * @returns {Promise<ChatMessage>}
   */
  sendEntry(drafted) {
    // What cannot be sent is said at once (this throws); signing follows.
    drafted();
    return this.signAndSend(drafted).then((m) => this.view(m));
  }

  /**
   * Adds an entry of another kind (a reply, an edit, a deletion, a
   * reaction or its withdrawal, about entry `re`; a room name), signed and
   * sent like a message ({@link Room#send}). A reply comes back as a
   * `message`, the others as `about`.
   * @param {import('./protocol.js').EntryKind} kind
   * @param {string} text
   * @param {import('./protocol.js').EntryRef} [re]
   * @returns {Promise<import('./history.js').Message>} the entry, once signed and sent
   */
  about(kind, text, re) {
    const entry = { id: randomId(), nick: this.nick ?? '', kind, text, re, ts: Date.now() };
    // What cannot be sent is said at once (this throws); signing follows.
    this.history.draftAbout(entry);
    return this.signAndSend(() => this.history.draftAbout(entry));
  }

  /**
   * Signs what `draft` numbers (after what is being sent already), records
   * it, keeps it on the device and sends it to every member whose channel
   * is open; the others get it when theirs is (the history sync).
   * @private
   * @param {() => import('./history.js').Draft} draft
   * @returns {Promise<import('./history.js').Message>}
   */
  signAndSend(draft) {
    const sent = this.sending.then(async () => {
      const identity = await this.identity;
      for (;;) {
        const drafted = draft();
        const sig = base64urlEncode(await signWith(identity, drafted.bytes));
        try {
          return this.history.commit(drafted, sig, [...this.members.keys()]);
        } catch (e) {
          // Another message took the number meanwhile: draft it again.
          if (!(e instanceof ProtocolError && e.code === 'stale')) throw e;
        }
      }
    });
    this.sending = sent.catch(() => {});
    return sent.then(({ message: m, envelope }) => {
      this.store?.add(this.roomId, [m]);
      this.saveState();
      for (const member of this.members.values()) this.sendTo(member, envelope);
      return m;
    });
  }

  /**
   * A log for `me`, signing with our identity key once it is loaded.
   * @private
   * @param {string} me
   */
  newHistory(me) {
    const history = new History(me);
    if (this.ownKey) history.setIdentity(roomContext(this.roomId), this.ownKey);
    return history;
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
   * Forgets everything this room keeps on this device: its history, the
   * private conversations, the files received (and those arriving);
   * messages sent before now do not come back from the others (the clear
   * marks alone are kept).
   * @returns {Promise<void>} once the store and the disk are cleared
   */
  async clearHistory() {
    this.history.clear();
    this.privates?.clearAll();
    const files = this.files?.clearAll();
    if (this.store) await this.store.clearRoom(this.roomId, privateScope(this.roomId, ''));
    this.saveStateNow();
    this.privates?.saveNow();
    await files;
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
    this.privates?.saveNow();
    if (forGood) this.signaling.leave();
    else this.signaling.stop();
    clearTimeout(this.meshTimer);
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
    this.feed({ server: detail.state });
    if (detail.state === 'offline' && !this.nick && !this.everJoined) {
      // A preconnection that dropped (or timed out waiting for a join).
      this.signaling.stop();
      return;
    }
    this.dispatchEvent(new CustomEvent('server', { detail }));
  }

  /**
   * @private
   * @param {import('./protocol.js').ServerMessage} msg
   */
  onServerMessage(msg) {
    this.serverQueue = this.serverQueue
      .then(() => this.handleServerMessage(msg))
      .catch((e) => console.warn('peerchat: a server message failed', e));
  }

  /**
   * @private
   * @param {import('./protocol.js').ServerMessage} msg
   */
  async handleServerMessage(msg) {
    switch (msg.type) {
      case 'joined':
        this.onJoined(msg);
        break;
      case 'peer_joined':
        this.feed({ peer_joined: msg.peer });
        break;
      case 'peer_left':
        this.feed({ peer_left: { id: msg.id } });
        break;
      case 'peer_renamed':
        this.feed({ peer_renamed: msg.peer });
        break;
      case 'renamed': {
        this.renaming = false;
        const old = this.nick;
        this.nick = msg.you.nick;
        if (old !== msg.you.nick) {
          this.dispatchEvent(new CustomEvent('renamed', { detail: { old: old ?? '', nick: msg.you.nick } }));
          this.changed();
        }
        break;
      }
      case 'signal': {
        if (!this.crypto) break;
        let plain;
        try {
          plain = await this.crypto.open(msg.from, msg.payload, Date.now());
        } catch (e) {
          if (e instanceof Refusal) this.refused(msg.from, e);
          else throw e;
          break;
        }
        const payload = /** @type {import('./peer.js').SignalPayload} */ (/** @type {unknown} */ (plain.payload));
        const kind = payload.description?.type === 'offer' || payload.description?.type === 'answer'
          ? payload.description.type
          : payload.candidate ? 'candidate' : null;
        if (typeof payload.sid === 'string' && kind) {
          this.feed({ signal: { from: msg.from, sid: payload.sid, kind } }, { payload });
        }
        break;
      }
      case 'ice_servers':
        // New TURN credentials, for the connections started from now on.
        this.iceServers = msg.ice_servers;
        break;
      case 'error':
        if (this.renaming && RENAME_ERRORS.has(msg.code)) {
          this.renaming = false;
          const message =
            msg.code === 'unknown_type'
              ? 'this server cannot rename members yet; leave and join again under the new nickname'
              : msg.message;
          this.dispatchEvent(new CustomEvent('rename-error', { detail: { code: msg.code, message } }));
          break;
        }
        this.feed({ error: { code: msg.code, to: msg.to } }, { message: msg.message });
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
      this.crypto?.setMe(this.selfId);
      const kept = this.history.save();
      this.history = this.newHistory(this.selfId);
      this.history.restore(kept);
    }
    this.nick = msg.you.nick;
    this.iceServers = msg.ice_servers;
    this.lastJoined = { you: msg.you, resumed: msg.resumed };
    this.feed({ joined: { you: msg.you.id, members: msg.members, resumed: msg.resumed } });
  }

  /**
   * Hands the mesh an input, carries out what it answers, and sets its
   * timer.
   * @private
   * @param {import('./mesh.js').Input} input
   * @param {{payload?: import('./peer.js').SignalPayload, message?: string}} [context]
   *   the signal or error message the input came with
   */
  feed(input, context = {}) {
    this.carryOut(this.mesh.handle(Date.now(), input), context);
  }

  /**
   * @private
   * @param {import('./mesh.js').Output[]} outputs
   * @param {{payload?: import('./peer.js').SignalPayload, message?: string}} context
   */
  carryOut(outputs, context) {
    let changed = false;
    for (const o of outputs) {
      if ('join' in o) {
        this.sendJoin();
      } else if ('join_refused' in o) {
        // Nothing is sent again until the page picks a nickname.
        this.nick = null;
        if (o.join_refused.code === 'replaced') this.signaling.stop();
        const detail = { code: o.join_refused.code, message: context.message ?? '' };
        this.dispatchEvent(new CustomEvent('join-error', { detail }));
      } else if ('entered' in o) {
        changed = true;
        if (o.entered.first && this.lastJoined) {
          this.dispatchEvent(new CustomEvent('joined', { detail: this.lastJoined }));
        }
      } else if ('added' in o) {
        const { peer, nick, announce } = o.added;
        this.members.set(peer, { id: peer, nick, state: 'connecting', link: null, gate: null, up: false, early: [] });
        this.nicks.set(peer, nick);
        if (announce) this.dispatchEvent(new CustomEvent('notice', { detail: { kind: 'joined', nick } }));
        changed = true;
      } else if ('renamed' in o) {
        const member = this.members.get(o.renamed.peer);
        const old = member?.nick ?? null;
        if (member) member.nick = o.renamed.nick;
        this.nicks.set(o.renamed.peer, o.renamed.nick);
        if (member && old !== null && old !== o.renamed.nick) {
          this.carryPin(member.id, o.renamed.nick);
          const detail = { kind: 'renamed', nick: o.renamed.nick, old };
          this.dispatchEvent(new CustomEvent('notice', { detail }));
        }
        changed = true;
      } else if ('removed' in o) {
        const member = this.members.get(o.removed.peer);
        if (member) this.removeMember(member, o.removed.announce);
      } else if ('state' in o) {
        const member = this.members.get(o.state.peer);
        if (member) member.state = o.state.state;
        changed = true;
      } else if ('start' in o || 'accept' in o) {
        const { peer, sid } = 'start' in o ? o.start : o.accept;
        const member = this.members.get(peer);
        if (member) {
          member.link = this.openLink(member, sid, 'start' in o);
          if ('accept' in o && context.payload) member.link?.handleSignal(context.payload);
        }
      } else if ('forward' in o) {
        const link = this.members.get(o.forward.peer)?.link;
        if (link?.sid === o.forward.sid && context.payload) link.handleSignal(context.payload);
      } else if ('drop' in o) {
        const member = this.members.get(o.drop.peer);
        if (member?.link?.sid === o.drop.sid) this.dropLink(member);
      } else if ('restart_ice' in o) {
        const link = this.members.get(o.restart_ice.peer)?.link;
        if (link?.sid === o.restart_ice.sid) link.restartIce();
      } else if ('hello' in o) {
        const member = this.members.get(o.hello.peer);
        if (member?.link?.sid === o.hello.sid) this.sendHello(member, member.link);
      } else if ('up' in o) {
        const member = this.members.get(o.up.peer);
        if (member) member.up = true;
        this.apply(this.history.linkOpened(o.up.peer));
        this.privates?.linkOpened(o.up.peer);
        this.files?.peerUp(o.up.peer);
        for (const ready of member?.early.splice(0) ?? []) ready(true);
      } else if ('down' in o) {
        const member = this.members.get(o.down.peer);
        if (member) member.up = false;
        for (const ready of member?.early.splice(0) ?? []) ready(false);
        this.history.linkClosed(o.down.peer);
        this.privates?.linkClosed(o.down.peer);
        this.files?.peerDown(o.down.peer);
      }
    }
    if (changed) this.changed();
    this.scheduleMesh();
  }

  /**
   * Calls the mesh back at its next deadline.
   * @private
   */
  scheduleMesh() {
    clearTimeout(this.meshTimer);
    const next = this.mesh.nextDeadline();
    if (next === null) return;
    this.meshTimer = setTimeout(() => this.carryOut(this.mesh.handleTimeout(Date.now()), {}), Math.max(0, next - Date.now()));
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
   * Closes the member's current link.
   * @private
   * @param {RoomMember} member
   */
  dropLink(member) {
    const link = member.link;
    member.link = null;
    member.gate = null;
    member.up = false;
    for (const ready of member.early.splice(0)) ready(false);
    link?.close();
  }

  /**
   * Starts a new connection to `member` now, in place of the current one
   * (the mesh's `restart`; the glare rule settles one it crosses), and
   * returns it.
   * @param {RoomMember} member
   * @returns {PeerLink | null}
   */
  newLink(member) {
    this.feed({ restart: { peer: member.id } });
    return member.link;
  }

  /**
   * Creates the link the mesh asked for, and reports what happens to it.
   * @private
   * @param {RoomMember} member
   * @param {string} sid
   * @param {boolean} initiator
   * @returns {PeerLink | null}
   */
  openLink(member, sid, initiator) {
    if (!this.selfId) return null;
    const peerId = member.id;
    const link = new PeerLink({
      selfId: this.selfId,
      peerId,
      iceServers: this.iceServers,
      sid,
      initiator,
      sendSignal: (payload) => this.sendSignal(peerId, payload),
      relayOnly: this.relayOnly,
    });
    const current = () => member.link === link;
    member.gate = { chain: Promise.resolve(), waiting: 0, key: null, failed: false };
    link.addEventListener('open', () => {
      if (current()) this.feed({ link_opened: { sid } });
    });
    link.addEventListener('transport', (e) => {
      if (current()) this.feed({ transport: { sid, state: /** @type {CustomEvent} */ (e).detail } });
    });
    link.addEventListener('message', (e) => {
      if (current()) this.onLinkMessage(member, link, /** @type {CustomEvent} */ (e).detail);
    });
    link.addEventListener('closed', () => {
      if (current()) this.feed({ link_closed: { sid } });
    });
    link.addEventListener('file-channel', (e) => {
      const channel = /** @type {CustomEvent<RTCDataChannel>} */ (e).detail;
      // Files are served only to a member whose hello verified. It may have
      // verified ours first and asked at once: its channel waits for its
      // hello (what it asks is read meanwhile, answered after).
      if (!current() || !this.files) channel.close();
      else if (member.up) this.files.channelFrom(peerId, channel);
      else if (member.early.length < MAX_FILE_CHANNELS_BEFORE_HELLO) {
        this.files.channelFrom(peerId, channel, new Promise((ready) => member.early.push(ready)));
      } else channel.close();
    });
    link.addEventListener('no-relay', (e) => {
      if (current()) this.dispatchEvent(new CustomEvent('no-relay', { detail: /** @type {CustomEvent} */ (e).detail }));
    });
    return link;
  }

  /**
   * Seals a signal for `to` and sends it: signals leave in the order they
   * were made (sealing is in order).
   * @private
   * @param {string} to
   * @param {import('./peer.js').SignalPayload} payload
   */
  sendSignal(to, payload) {
    this.crypto?.seal(to, payload, Date.now()).then(
      (sealed) => this.signaling.signal(to, sealed),
      (e) => console.warn('peerchat: could not seal a signal', e),
    );
  }

  /**
   * A signal was refused: it changes nothing, and is told (rate-limited).
   * @private
   * @param {string} from
   * @param {Refusal} refusal
   */
  refused(from, refusal) {
    const nick = this.nickOf(from);
    console.warn(`peerchat: a signal from ${nick} was refused (${refusal.code})`);
    const key = `${from} ${refusal.code}`;
    const now = Date.now();
    const told = this.refusalsTold.get(key);
    if (told !== undefined && now - told < REFUSAL_NOTICE_MS) return;
    if (this.refusalsTold.size >= 1024) this.refusalsTold.clear();
    this.refusalsTold.set(key, now);
    const detail = { from, nick, code: refusal.code, text: refusalText(nick, refusal) };
    this.dispatchEvent(new CustomEvent('refused', { detail }));
  }

  /**
   * The link as this side sees it, for its hellos.
   * @private
   * @param {RoomMember} member
   * @param {PeerLink} link
   * @returns {import('./e2e.js').Link}
   */
  helloView(member, link) {
    if (!link.localFingerprint || !link.remoteFingerprint) throw new Error("the connection's fingerprints are unknown");
    return {
      context: roomContext(this.roomId),
      sid: link.sid,
      me: this.selfId,
      myNick: this.nick ?? '',
      peer: member.id,
      peerNick: member.nick,
      myFingerprint: link.localFingerprint,
      peerFingerprint: link.remoteFingerprint,
    };
  }

  /**
   * The channel opened: our hello goes first, before anything else on the
   * link (later envelopes wait in the same chain).
   * @private
   * @param {RoomMember} member
   * @param {PeerLink} link
   */
  sendHello(member, link) {
    const gate = member.gate;
    if (!gate) return;
    gate.chain = gate.chain.then(async () => {
      try {
        const hello = await buildHello(await this.identity, this.helloView(member, link));
        if (member.link === link) link.send(helloEnvelope(hello));
      } catch (e) {
        this.helloFailed(member, link, `our hello could not be made (${/** @type {Error} */ (e).message})`);
      }
    });
  }

  /**
   * An envelope from a member: its hello first, then the rest in order. What
   * arrives while the hello is being checked waits, up to a bound.
   * @private
   * @param {RoomMember} member
   * @param {PeerLink} link
   * @param {string} text
   */
  onLinkMessage(member, link, text) {
    const gate = member.gate;
    if (!gate || gate.failed) return;
    if (gate.key && gate.waiting === 0) {
      this.onVerifiedMessage(member, link, gate, text);
      return;
    }
    if (!gate.key && gate.waiting >= MAX_BEFORE_HELLO) {
      this.helloFailed(member, link, 'it sent too much before its hello was checked');
      return;
    }
    gate.waiting += 1;
    gate.chain = gate.chain
      .then(async () => {
        if (member.link !== link || gate.failed) return;
        if (!gate.key) await this.checkHello(member, link, gate, text);
        else this.onVerifiedMessage(member, link, gate, text);
      })
      .catch((e) => console.warn('peerchat: a message failed', member.nick, e))
      .finally(() => {
        gate.waiting -= 1;
      });
  }

  /**
   * The first envelope on a link must be the member's hello, and verify
   * against our view of the link.
   * @private
   * @param {RoomMember} member
   * @param {PeerLink} link
   * @param {Gate} gate
   * @param {string} text
   */
  async checkHello(member, link, gate, text) {
    let hello;
    try {
      hello = parseHello(JSON.parse(text));
    } catch {
      this.helloFailed(member, link, 'its first message was not a valid hello: it may not speak protocol version 2');
      return;
    }
    try {
      await verifyHello(hello, this.helloView(member, link));
    } catch {
      this.helloFailed(
        member,
        link,
        'its hello does not match this connection: someone may be in the middle, or the server announced it under another name',
      );
      return;
    }
    if (member.link !== link) return;
    const known = this.identities.get(member.id);
    if (known && !sameKey(known.key, hello.key)) {
      this.helloFailed(member, link, 'it presented another identity key than earlier on');
      return;
    }
    if (!known) {
      // The pin is checked beside the connection, not in its way: the
      // member is shown as verified, changed or new when it is known.
      const identity = { key: hello.key, nick: member.nick, verified: false, changed: false };
      this.identities.set(member.id, identity);
      void this.checkPin(member, identity).then(() => this.changed());
    }
    gate.key = hello.key;
    // Its messages (live, or relayed by others before) verify with this key.
    this.apply(this.history.keyConfirmed(member.id, publicKeyToWire(hello.key)));
    this.privates?.keyConfirmed(member.id, publicKeyToWire(hello.key));
    this.feed({ verified: { sid: link.sid } });
  }

  /**
   * A member whose hello verified took the nickname `nick`: its pin (and
   * a verified mark) goes with it, so that its next connection does not
   * show a changed safety number. The old nickname's pin stays.
   * @private
   * @param {string} id
   * @param {string} nick
   */
  carryPin(id, nick) {
    const identity = this.identities.get(id);
    if (!identity) return;
    const old = identity.nick;
    identity.nick = nick;
    const keystore = this.keystore;
    if (!keystore) return;
    keystore
      .carryPin(this.roomId, old, nick, identity.key)
      .catch((e) => console.warn('peerchat: could not keep the pin under the new nickname', e));
  }

  /**
   * Checks a member's key against the pin of its nickname in this room
   * (trust on first use). A changed key is told prominently and becomes
   * the pin; an earlier verification goes.
   * @private
   * @param {RoomMember} member
   * @param {MemberIdentity} identity what we know of it, updated here
   */
  async checkPin(member, identity) {
    const key = identity.key;
    await this.identity.catch(() => null); // the key store is open by then
    if (!this.keystore) return;
    try {
      const check = await this.keystore.check(this.roomId, member.nick, key);
      if (check.status === 'same') identity.verified = check.pin.verified;
      if (check.status === 'changed') {
        identity.changed = true;
        // The member list marks it as the conversation tells it, not only
        // once the new pin is stored.
        this.changed();
        this.dispatchEvent(new CustomEvent('key-changed', { detail: { id: member.id, nick: member.nick } }));
        await this.keystore.replacePin(this.roomId, member.nick, key);
      }
    } catch (e) {
      console.warn('peerchat: could not check the pinned keys', e);
    }
  }

  /**
   * Our safety number with a member whose hello verified: 60 digits in 12
   * groups of 5.
   * @param {string} peerId
   */
  async safetyNumber(peerId) {
    const theirs = this.identities.get(peerId);
    if (!theirs) throw new Error('this member is not verified yet');
    const ours = await this.identity;
    return groupDigits(await safetyNumber(ours.publicKey, theirs.key));
  }

  /**
   * Marks a member verified: its safety number was compared out of band.
   * The mark is kept with its pinned key, and reset if the key changes.
   * @param {string} peerId
   */
  async markVerified(peerId) {
    const identity = this.identities.get(peerId);
    if (!identity) return;
    identity.verified = true;
    identity.changed = false;
    try {
      await this.keystore?.setVerified(this.roomId, identity.nick, identity.key, true);
    } catch (e) {
      console.warn('peerchat: could not keep the verification', e);
    }
    this.changed();
  }

  /**
   * An envelope on a verified link. Another hello with the same key is
   * nothing; with another key, it ends the link.
   * @private
   * @param {RoomMember} member
   * @param {PeerLink} link
   * @param {Gate} gate
   * @param {string} text
   */
  onVerifiedMessage(member, link, gate, text) {
    if (text.includes('"hello"')) {
      let hello = null;
      try {
        hello = parseHello(JSON.parse(text));
      } catch {
        // Not a hello: an envelope like the others.
      }
      if (hello) {
        if (gate.key && !sameKey(gate.key, hello.key)) {
          this.helloFailed(member, link, 'it sent a second hello with another identity key');
        }
        return;
      }
    }
    this.inbox.push(member, text);
  }

  /**
   * A hello failed: the link is closed, the member shows as not verified,
   * and the conversation says why.
   * @private
   * @param {RoomMember} member
   * @param {PeerLink} link
   * @param {string} reason
   */
  helloFailed(member, link, reason) {
    if (member.gate) member.gate.failed = true;
    console.warn(`peerchat: could not verify ${member.nick}: ${reason}`);
    this.dispatchEvent(new CustomEvent('not-verified', { detail: { nick: member.nick, reason } }));
    if (member.link === link) this.feed({ rejected: { sid: link.sid } });
  }

  /**
   * Envelopes from members, a batch at a time: stored, shown and
   * acknowledged together.
   * @private
   * @param {Array<[RoomMember, string]>} batch
   */
  onPeerMessages(batch) {
    /** @type {import('./history.js').Effect[]} */
    const effects = [];
    const now = Date.now();
    for (const [member, text] of batch) {
      try {
        // A private envelope belongs to the conversation with its sender,
        // never to the room's log.
        const body = text.includes('"private"') ? unwrapPrivate(text) : null;
        if (body !== null) {
          this.privates?.handle(member.id, member.nick, body, now);
          continue;
        }
        effects.push(...this.history.handle(member.id, member.nick, text, now));
      } catch (e) {
        console.warn('peerchat: ignoring a malformed message from', member.nick, e);
      }
    }
    this.apply(lastAcks(effects));
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
    /** @type {Map<string, {author: string, by: string, count: number}>} */
    const forged = new Map();
    for (const effect of effects) {
      if ('added' in effect) added.push(effect.added);
      else if ('send' in effect) {
        const to = this.members.get(effect.send.to);
        if (to) this.sendTo(to, effect.send.text);
      } else if ('acked' in effect) acked = true;
      else if ('typing' in effect) typing = true;
      else if ('verify' in effect) this.checkSignatures(effect.verify);
      else if ('forged' in effect) {
        const { author, by } = effect.forged;
        const key = `${author} ${by}`;
        const seen = forged.get(key) ?? { author: this.nickOf(author), by: this.nickOf(by), count: 0 };
        seen.count += 1;
        forged.set(key, seen);
      } else if ('confirmed' in effect) {
        const [authorId, seq] = effect.confirmed;
        const m = this.history.get(authorId, seq);
        if (m) this.store?.add(this.roomId, [m]);
        this.dispatchEvent(new CustomEvent('message-verified', { detail: { authorId, seq } }));
      } else if ('removed' in effect) {
        const { author: authorId, seq, by } = effect.removed;
        this.store?.remove(this.roomId, authorId, seq);
        const detail = { authorId, seq, author: this.nickOf(authorId), by: this.nickOf(by) };
        this.dispatchEvent(new CustomEvent('message-removed', { detail }));
      }
    }
    for (const detail of forged.values()) {
      console.warn(`peerchat: refused ${detail.count} message(s) attributed to ${detail.author}, from ${detail.by}`);
      this.dispatchEvent(new CustomEvent('forged', { detail }));
    }
    if (added.length > 0) {
      // The log drops its oldest past its capacity: so does the store.
      this.store?.add(this.roomId, added, () => this.history.messages());
      for (const m of added) {
        if (m.author !== this.selfId && !this.nicks.has(m.author)) this.nicks.set(m.author, m.nick);
        if (isShown(m)) this.dispatchEvent(new CustomEvent('message', { detail: this.view(m) }));
        else this.dispatchEvent(new CustomEvent('about', { detail: m }));
      }
      this.pruneNicks();
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

  /**
   * Checks the signatures the log asks about, and hands it the results.
   * @private
   * @param {import('./history.js').Check} check
   */
  checkSignatures(check) {
    const history = this.history;
    void Promise.all(
      check.items.map(async (item) => {
        const sig = base64urlDecode(item.sig);
        try {
          return sig !== null && (await verifySignature(publicKeyFromWire(item), item.bytes, sig));
        } catch {
          return false;
        }
      }),
    ).then((results) => {
      if (this.history === history) this.apply(history.verified(check.id, results));
    });
  }

  /**
   * Keeps the nicknames of authors bounded: past twice the history's
   * capacity, only members' and those of authors in the log stay.
   * @private
   */
  pruneNicks() {
    if (this.nicks.size <= 2 * this.history.config.capacity) return;
    const keep = new Set([...this.members.keys(), ...this.history.messages().map((m) => m.author)]);
    for (const id of this.nicks.keys()) if (!keep.has(id)) this.nicks.delete(id);
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
   * Sends an envelope over the chat channel to `member`, if it is up.
   * @param {RoomMember} member
   * @param {string} envelope
   */
  sendTo(member, envelope) {
    if (!member.up || !member.link?.isOpen) return;
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
   * A member's (or author's) nickname, as last known.
   * @param {string} id
   */
  nickOf(id) {
    return this.members.get(id)?.nick ?? this.nicks.get(id) ?? id.slice(0, 6);
  }

  /**
   * A log entry as the page shows it.
   * @param {import('./history.js').Message} m
   * @returns {ChatMessage}
   */
  view(m) {
    const own = m.author === this.selfId;
    const relayedBy = m.relayed_by ? this.nickOf(m.relayed_by) : null;
    /** @type {ChatMessage} */
    const view = { id: m.id, seq: m.seq, clock: m.clock, ts: m.ts, text: m.text, authorId: m.author, author: m.nick, own, relayedBy };
    if (m.file) view.file = m.file;
    if (m.re) view.re = m.re;
    return view;
  }

  /** @private */
  changed() {
    this.dispatchEvent(new Event('members'));
  }
}
