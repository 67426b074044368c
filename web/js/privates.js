// @ts-check
/**
 * Private conversations of one member of a room: the driver of
 * {@link Conversations} (private.js). It signs what we write, checks what
 * arrives, sends each conversation's envelopes only over the chat channel
 * to its other party, and keeps each conversation on this device apart
 * from the room's history (IndexedDB, under `private:ROOM:PEER`), with
 * how far the reader has read each (localStorage, under
 * `peerchat.read.ROOM`), so unread counts outlive a reload. No DOM here:
 * the page renders what the room emits.
 *
 * Events (on the room):
 * - `private-message` (detail: {peer, message: ChatMessage}) an entry new
 *   to this page in the conversation with `peer`, ours or theirs
 * - `private-delivery` (detail: {peer}) who holds our entries changed
 * - `private-typing` (detail: {peer}) `peer` typed, or stopped
 * - `private-unread` (detail: {peer}) the unread count of `peer` changed
 * @module
 */

import { base64urlDecode, base64urlEncode, publicKeyFromWire, roomContext, signWith, verifySignature } from './e2e.js';
import { compare } from './history.js';
import { Conversations, MAX_CONVERSATIONS } from './private.js';
import { ProtocolError, randomId } from './protocol.js';

/**
 * @typedef {import('./history.js').Effect} Effect
 * @typedef {import('./history.js').Message} Message
 * @typedef {import('./room.js').Room} Room
 * @typedef {import('./room.js').ChatMessage} ChatMessage
 * @typedef {import('./room.js').DeliveryState} DeliveryState
 */

/** The name under which the conversation with `peer` is kept. */
const STORE_PREFIX = 'private:';
/** Where the read marks of a room's private conversations are kept (localStorage). */
const READ_PREFIX = 'peerchat.read.';

/**
 * @typedef {{clock: number, author: string, seq: number}} OrderKey
 */

/**
 * The localStorage name of a room's read marks.
 * @param {string} roomId
 */
export function readMarksName(roomId) {
  return `${READ_PREFIX}${roomId}`;
}

/**
 * The read marks kept for a room: per other party, the newest entry of
 * the conversation the reader had seen.
 * @param {string} roomId
 * @returns {Map<string, OrderKey>}
 */
function loadMarks(roomId) {
  /** @type {Map<string, OrderKey>} */
  const marks = new Map();
  try {
    const kept = JSON.parse(localStorage.getItem(readMarksName(roomId)) ?? '{}');
    for (const [peer, k] of Object.entries(kept ?? {})) {
      if (k && Number.isFinite(k.clock) && typeof k.author === 'string' && Number.isFinite(k.seq)) {
        marks.set(peer, { clock: k.clock, author: k.author, seq: k.seq });
      }
    }
  } catch {
    // None kept, or damaged: no counts from before.
  }
  return marks;
}

/**
 * The store name of a room's private conversation with `peer`.
 * @param {string} roomId
 * @param {string} peer
 */
export function privateScope(roomId, peer) {
  return `${STORE_PREFIX}${roomId}:${peer}`;
}

export class PrivateChats {
  /**
   * @param {Room} room
   * @param {string} me our peer id
   * @param {{alg: string, key: string} | null} ownKey our identity key, as on the wire
   */
  constructor(room, me, ownKey) {
    this.room = room;
    this.conversations = new Conversations(me);
    if (ownKey) this.setOwnKey(ownKey);
    /** @type {Promise<unknown>} our entries are signed one after another */
    this.sending = Promise.resolve();
    /** @type {Set<string>} conversations whose delivery state waits to be saved */
    this.dirty = new Set();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.saveTimer = undefined;
    /** @type {Map<string, ReturnType<typeof setTimeout>>} typing refreshes, per peer */
    this.typingTimers = new Map();
    /** How far the reader has read each conversation. */
    this.marks = loadMarks(room.roomId);
  }

  /**
   * The newest entry of the conversation with `peer` the reader had seen,
   * if known.
   * @param {string} peer
   * @returns {OrderKey | null}
   */
  readMark(peer) {
    return this.marks.get(peer) ?? null;
  }

  /**
   * Signs from now on with our identity key (as on the wire), once it is
   * loaded.
   * @param {{alg: string, key: string}} ownKey
   */
  setOwnKey(ownKey) {
    this.conversations.setIdentity(roomContext(this.room.roomId), ownKey);
  }

  /**
   * Brings back the conversations kept on this device.
   * @returns {Promise<Array<{peer: string, messages: ChatMessage[]}>>}
   */
  async restore() {
    const store = this.room.store;
    if (!store) return [];
    /** @type {Array<{peer: string, messages: ChatMessage[]}>} */
    const out = [];
    try {
      for (const peer of await store.scopesUnder(`${STORE_PREFIX}${this.room.roomId}:`)) {
        const saved = await store.load(privateScope(this.room.roomId, peer));
        const restored = this.conversations.restore(peer, saved, Date.now());
        for (const m of restored) if (m.author === peer) this.room.nicks.set(peer, this.room.nicks.get(peer) ?? m.nick);
        // Unread: what came from `peer` after the reader's mark (counted as
        // the live count does, every entry of theirs).
        const mark = this.marks.get(peer);
        if (mark) this.conversations.setUnread(peer, restored.filter((m) => m.author === peer && compare(m, mark) > 0).length);
        out.push({ peer, messages: restored.map((m) => this.view(m)) });
      }
    } catch (e) {
      console.warn('peerchat: could not read the private conversations kept on this device', e);
    }
    return out;
  }

  /** Other parties of the conversations kept, sorted. */
  peers() {
    return this.conversations.peers();
  }

  /**
   * Sends a private message to `peer`, over the chat channel to it alone;
   * if it is not open, the message goes when it is (the conversation's
   * sync).
   * @param {string} peer
   * @param {string} text
   * @returns {Promise<ChatMessage>} our message, once signed and sent
   */
  send(peer, text) {
    const message = { id: randomId(), nick: this.room.nick ?? '', text, ts: Date.now() };
    return this.sendEntry(peer, () => this.conversations.draft(peer, message));
  }

  /**
   * Offers a file to `peer` alone: the offer is an entry of our
   * conversation with it.
   * @param {string} peer
   * @param {import('./protocol.js').FileMeta} file
   * @returns {Promise<ChatMessage>}
   */
  sendFile(peer, file) {
    const offer = { id: randomId(), nick: this.room.nick ?? '', file, ts: Date.now() };
    return this.sendEntry(peer, () => this.conversations.draftFile(peer, offer));
  }

  /**
   * Signs and sends an entry of ours to `peer`.
   * @private
   * @param {string} peer
   * @param {() => import('./history.js').Draft} drafted
   * @returns {Promise<ChatMessage>}
   */
  sendEntry(peer, drafted) {
    // What cannot be sent is said at once (this throws); signing follows.
    // Before our identity key is loaded, the draft is checked once it is.
    if (this.room.ownKey) drafted();
    const sent = this.sending.then(async () => {
      const identity = await this.room.identity;
      for (;;) {
        const draft = drafted();
        const sig = base64urlEncode(await signWith(identity, draft.bytes));
        try {
          return this.conversations.commit(peer, draft, sig);
        } catch (e) {
          if (!(e instanceof ProtocolError && e.code === 'stale')) throw e;
        }
      }
    });
    this.sending = sent.catch(() => {});
    return sent.then(({ message: m, envelope }) => {
      this.keep(peer, [m]);
      this.sendTo(peer, envelope);
      return this.view(m);
    });
  }

  /**
   * We typed in the conversation with `peer`.
   * @param {string} peer
   */
  typed(peer) {
    const envelope = this.conversations.typed(peer, Date.now());
    if (envelope) this.sendTo(peer, envelope);
  }

  /**
   * Whether `peer` is typing to us now.
   * @param {string} peer
   */
  isTyping(peer) {
    return this.conversations.get(peer)?.typing(Date.now()).includes(peer) ?? false;
  }

  /** @param {string} peer */
  unread(peer) {
    return this.conversations.unread(peer);
  }

  /** @param {string} peer */
  markRead(peer) {
    // Read up to the newest entry (before any, for a conversation opened
    // empty: whatever comes next is unread).
    const newest = this.conversations.get(peer)?.messages().at(-1) ?? { clock: 0, author: '', seq: 0 };
    const mark = this.marks.get(peer);
    if (!mark || compare(newest, mark) > 0) {
      this.marks.set(peer, { clock: newest.clock, author: newest.author, seq: newest.seq });
      this.saveMarks();
    }
    if (this.conversations.unread(peer) === 0) return;
    this.conversations.markRead(peer);
    this.room.dispatchEvent(new CustomEvent('private-unread', { detail: { peer } }));
  }

  /**
   * Forgets every private conversation of the room on this device, and
   * how far they were read. Each keeps its clear mark (saved by
   * {@link PrivateChats.saveNow}), so what was said does not come back
   * from the other party.
   */
  clearAll() {
    for (const peer of this.conversations.peers()) {
      this.conversations.get(peer)?.clear();
      this.conversations.markRead(peer);
      this.dirty.add(peer);
    }
    this.marks.clear();
    try {
      localStorage.removeItem(readMarksName(this.room.roomId));
    } catch {
      // Nothing kept.
    }
  }

  /**
   * Keeps the read marks (of the conversations still kept, at most as
   * many as conversations are).
   * @private
   */
  saveMarks() {
    if (this.marks.size > MAX_CONVERSATIONS) {
      for (const peer of this.marks.keys()) if (!this.conversations.get(peer)) this.marks.delete(peer);
    }
    try {
      localStorage.setItem(readMarksName(this.room.roomId), JSON.stringify(Object.fromEntries(this.marks)));
    } catch {
      // Storage full or refused: counts start afresh next time.
    }
  }

  /**
   * Where one of our messages to `peer` stands.
   * @param {string} peer
   * @param {number} seq
   * @returns {DeliveryState}
   */
  delivery(peer, seq) {
    const log = this.conversations.get(peer);
    const { acked } = log ? log.delivery(seq) : { acked: [] };
    const nick = this.room.nickOf(peer);
    if (acked.length > 0) return { state: 'delivered', text: 'Delivered', detail: `Delivered to ${nick}.` };
    if (this.room.members.has(peer)) return { state: 'sending', text: 'Sending…', detail: `Waiting for ${nick}.` };
    return {
      state: 'undelivered',
      text: `Not delivered to ${nick}`,
      detail: `Not delivered to ${nick}, who left; ${nick} gets it if they come back.`,
    };
  }

  /**
   * The chat channel to `peer` is up (its hello verified).
   * @param {string} peer
   */
  linkOpened(peer) {
    this.apply(peer, this.conversations.linkOpened(peer));
  }

  /** @param {string} peer */
  linkClosed(peer) {
    this.conversations.linkClosed(peer);
    this.room.dispatchEvent(new CustomEvent('private-typing', { detail: { peer } }));
  }

  /**
   * `peer`'s hello verified with `key`.
   * @param {string} peer
   * @param {{alg: string, key: string}} key
   */
  keyConfirmed(peer, key) {
    this.apply(peer, this.conversations.keyConfirmed(peer, key));
  }

  /**
   * The body of a `private` envelope from `peer`.
   * @param {string} peer
   * @param {string} nick
   * @param {string} body
   * @param {number} now
   */
  handle(peer, nick, body, now) {
    this.apply(peer, this.conversations.handle(peer, nick, body, now));
  }

  /**
   * Carries out what the conversation with `peer` asks for.
   * @private
   * @param {string} peer
   * @param {Effect[]} effects
   */
  apply(peer, effects) {
    /** @type {Message[]} */
    const added = [];
    let acked = false;
    let typing = false;
    for (const effect of effects) {
      if ('added' in effect) added.push(effect.added);
      else if ('send' in effect) {
        // Never to anyone but the other party.
        if (effect.send.to === peer) this.sendTo(peer, effect.send.text);
      } else if ('acked' in effect) acked = true;
      else if ('typing' in effect) typing = true;
      else if ('verify' in effect) this.checkSignatures(peer, effect.verify);
      else if ('forged' in effect) {
        console.warn(`peerchat: refused a private message attributed to ${this.room.nickOf(effect.forged.author)}`);
      } else if ('confirmed' in effect) {
        const m = this.conversations.get(peer)?.get(effect.confirmed[0], effect.confirmed[1]);
        if (m) this.keep(peer, [m]);
      }
    }
    if (added.length > 0) {
      this.keep(peer, added);
      for (const m of added) {
        this.room.dispatchEvent(new CustomEvent('private-message', { detail: { peer, message: this.view(m) } }));
      }
      if (added.some((m) => m.author === peer)) {
        this.room.dispatchEvent(new CustomEvent('private-unread', { detail: { peer } }));
        typing = true;
      }
    }
    if (acked) {
      this.saveSoon(peer);
      this.room.dispatchEvent(new CustomEvent('private-delivery', { detail: { peer } }));
    }
    if (typing) {
      this.room.dispatchEvent(new CustomEvent('private-typing', { detail: { peer } }));
      this.scheduleTypingRefresh(peer);
    }
  }

  /**
   * Tells the page again when `peer`'s typing notice runs out.
   * @private
   * @param {string} peer
   */
  scheduleTypingRefresh(peer) {
    clearTimeout(this.typingTimers.get(peer));
    const next = this.conversations.get(peer)?.typingDeadline(Date.now()) ?? null;
    if (next === null) {
      this.typingTimers.delete(peer);
      return;
    }
    const timer = setTimeout(() => {
      this.room.dispatchEvent(new CustomEvent('private-typing', { detail: { peer } }));
      this.scheduleTypingRefresh(peer);
    }, Math.max(0, next - Date.now()) + 10);
    this.typingTimers.set(peer, timer);
  }

  /**
   * Checks the signatures the conversation asks about.
   * @private
   * @param {string} peer
   * @param {import('./history.js').Check} check
   */
  checkSignatures(peer, check) {
    const log = this.conversations.get(peer);
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
      if (this.conversations.get(peer) === log) this.apply(peer, this.conversations.verified(peer, check.id, results));
    });
  }

  /**
   * Sends a (wrapped) envelope over the chat channel to `peer`, if it is up.
   * @private
   * @param {string} peer
   * @param {string} envelope
   */
  sendTo(peer, envelope) {
    const member = this.room.members.get(peer);
    if (member) this.room.sendTo(member, envelope);
  }

  /**
   * Keeps entries of the conversation with `peer` on this device.
   * @private
   * @param {string} peer
   * @param {Message[]} messages
   */
  keep(peer, messages) {
    const store = this.room.store;
    if (!store) return;
    const log = this.conversations.get(peer);
    store.add(privateScope(this.room.roomId, peer), messages, log ? () => log.messages() : undefined);
    this.saveSoon(peer);
  }

  /**
   * Saves the delivery state of the conversation with `peer` soon (it also
   * marks the conversation as one kept here).
   * @private
   * @param {string} peer
   */
  saveSoon(peer) {
    if (!this.room.store) return;
    this.dirty.add(peer);
    if (this.saveTimer === undefined) this.saveTimer = setTimeout(() => this.saveNow(), 200);
  }

  /** Saves what waits to be saved, now (the page goes away, say). */
  saveNow() {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const store = this.room.store;
    if (!store) return;
    for (const peer of this.dirty) {
      const saved = this.conversations.save(peer);
      const scope = privateScope(this.room.roomId, peer);
      if (saved) store.saveState(scope, { recipients: saved.recipients, acks: saved.acks, cleared: saved.cleared });
      store.flush(scope);
    }
    this.dirty.clear();
  }

  /**
   * @private
   * @param {Message} m
   * @returns {ChatMessage}
   */
  view(m) {
    return this.room.view(m);
  }
}
