// @ts-check
/**
 * A room's message log as one member holds it: ordering, de-duplication,
 * acknowledgements, history sync and typing notices. No I/O and no clock:
 * the caller passes the time in and carries out the effects returned.
 *
 * This mirrors the Rust crate `peerchat-history`; both replay the scenarios
 * in `tests/vectors/history.json`, so the two cannot drift apart. See
 * docs/protocol.md, section 3, for the rules.
 *
 * Every message is signed by its author (protocol version 2). Signing and
 * checking signatures is asynchronous in the browser, so the log leaves it
 * to its caller: {@link History#draft} says what to sign and
 * {@link History#commit} records our message with its signature; what
 * arrives comes back as a `verify` effect, answered with
 * {@link History#verified}. The rules for whose key a message must verify
 * with, and for relayed messages whose author's key is not known yet, are
 * the Rust crate's (see its documentation and docs/protocol.md).
 * @module
 */

import { messageSignedBytes } from './e2e.js';

import {
  ackEnvelope,
  chatEnvelope,
  historyEnvelope,
  isBlank,
  TARGET_KINDS,
  MAX_COUNTER,
  MAX_HISTORY_BATCH,
  MAX_JUMP,
  MAX_SYNC_AUTHORS,
  MAX_TEXT_BYTES,
  MAX_TEXT_SIZE,
  MAX_TS,
  parseFileMeta,
  parsePeerMessage,
  ProtocolError,
  salvagePeerMessage,
  syncEnvelope,
  typingEnvelope,
  utf8Length,
  validateNick,
} from './protocol.js';

/**
 * A message in the log: a history record with its author's key and
 * signature (empty for one kept from before messages were signed, which is
 * never passed on), and `relayed_by` while it is relayed and its author's
 * key not confirmed yet. An entry of another kind than chat and file has
 * `kind` (and `re`, the entry it is about).
 * @typedef {{author: string, nick: string, id: string, seq: number, clock: number, ts: number, text: string,
 *   file?: import('./protocol.js').FileMeta, kind?: import('./protocol.js').EntryKind,
 *   re?: import('./protocol.js').EntryRef, alg: string, key: string, sig: string, relayed_by?: string}} Message
 * What an entry shown in the log looks like now ({@link History#entryState}):
 * `text` the last edit's (left out if not edited, or deleted).
 * @typedef {{text?: string, edited: boolean, deleted: boolean,
 *   reactions: {emoji: string, by: [string, string][]}[]}} EntryState
 * @typedef {{text: string, author: string, nick: string}} RoomName
 * @typedef {{capacity: number, batchBytes: number, syncIntervalMs: number,
 *   typingTtlMs: number, typingIntervalMs: number}} Config
 * @typedef {{alg: string, key: string, bytes: Uint8Array, sig: string}} CheckItem
 *   a signature to check: `sig` by the key (`alg`, `key`, base64url) over `bytes`
 * @typedef {{id: number, items: CheckItem[]}} Check
 * @typedef {{added: Message}
 *   | {send: {to: string, text: string}}
 *   | {acked: {by: string, upto: number}}
 *   | {typing: string}
 *   | {refused: [string, number]}
 *   | {verify: Check}
 *   | {forged: {author: string, seq: number, by: string}}
 *   | {confirmed: [string, number]}
 *   | {removed: {author: string, seq: number, by: string}}} Effect
 * @typedef {{check: Message, item: number} | {flawed: [string, number]} | {forged: [string, number]}} Pend
 * @typedef {{message: Message, bytes: Uint8Array}} Draft a message of ours, numbered, to sign
 * @typedef {{messages: Message[], recipients: [number, string[]][], acks: [string, number][], cleared?: number}} Saved
 */

/** @type {Config} */
export const DEFAULT_CONFIG = {
  capacity: 1000,
  batchBytes: 60 * 1024,
  syncIntervalMs: 2000,
  typingTtlMs: 6000,
  typingIntervalMs: 3000,
};

/**
 * Compares two messages by clock, then author, then sequence number.
 * @param {{clock: number, author: string, seq: number}} a
 * @param {{clock: number, author: string, seq: number}} b
 */
export function compare(a, b) {
  if (a.clock !== b.clock) return a.clock - b.clock;
  if (a.author !== b.author) return a.author < b.author ? -1 : 1;
  return a.seq - b.seq;
}

/**
 * @param {string} author
 * @param {number} seq
 */
function idOf(author, seq) {
  return `${author}\u0000${seq}`;
}

/** Bytes of messages waiting for their signatures to be checked; more are refused until they are. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * A message as kept, its fields in the protocol's order (and `relayed_by`
 * only when set).
 * @param {Omit<Message, 'alg' | 'key' | 'sig'> & {alg?: string, key?: string, sig?: string}} m
 * @returns {Message}
 */
function kept(m) {
  const head = { author: m.author, nick: m.nick, id: m.id, seq: m.seq, clock: m.clock, ts: m.ts, text: m.text };
  const signed = { alg: m.alg ?? '', key: m.key ?? '', sig: m.sig ?? '' };
  // In the protocol's order: the offer (or the kind and target) after the text.
  /** @type {Message} */
  let out;
  if (m.file) out = { ...head, file: m.file, ...signed };
  else if (m.kind) {
    const about = m.re ? { kind: m.kind, re: { author: m.re.author, seq: m.re.seq } } : { kind: m.kind };
    out = { ...head, ...about, ...signed };
  } else out = { ...head, ...signed };
  if (m.relayed_by) out.relayed_by = m.relayed_by;
  return out;
}

/**
 * A message as a history record: without empty fields or `relayed_by`.
 * @param {Message} m
 * @returns {import('./protocol.js').HistoryRecord}
 */
function record(m) {
  const { author, nick, id, seq, clock, ts, text } = m;
  /** @type {import('./protocol.js').HistoryRecord} */
  const out = { author, nick, id, seq, clock, ts, text };
  if (m.file) out.file = m.file;
  if (m.kind) out.kind = m.kind;
  if (m.re) out.re = m.re;
  if (m.alg) out.alg = m.alg;
  if (m.key) out.key = m.key;
  if (m.sig) out.sig = m.sig;
  return out;
}

/** The kind a file offer is signed under. */
export const KIND_FILE = 'file';

/**
 * The kind an entry of a private conversation is signed under, so that it
 * cannot be passed off as one in the room's log or in a conversation with
 * someone else.
 */
export const KIND_PRIVATE = 'private';

/**
 * The body a file offer is signed with: its id, size, media type, piece
 * size, SHA-256 and root (lowercase hex), and name, one a line, the name
 * last.
 * @param {import('./protocol.js').FileMeta} file
 */
export function fileBody(file) {
  return [file.fid, file.size, file.type, file.piece, file.sha256, file.root, file.name].join('\n');
}

/**
 * The body an entry of a kind other than chat and file is signed with: for
 * kinds with a target, the target's author and number, then (but for a
 * deletion) the text, one a line; for a room name, the name. Throws for a
 * kind with a target and none given.
 * @param {import('./protocol.js').EntryKind} kind
 * @param {import('./protocol.js').EntryRef | undefined} re
 * @param {string} text
 */
export function entryBody(kind, re, text) {
  if (!TARGET_KINDS.has(kind)) return text;
  if (!re) throw new ProtocolError('bad_message', 'field `re` is missing');
  return kind === 'delete' ? `${re.author}\n${re.seq}` : `${re.author}\n${re.seq}\n${text}`;
}

/**
 * The bytes an entry's author signs, in `context`: a chat message's kind is
 * `chat` and its body the text, a file offer's kind is `file` and its body
 * {@link fileBody}, another kind's is {@link entryBody}; in a private
 * conversation with recipient `to`, the kind is `private` and the body
 * `TO`, that kind and that body, one a line. Throws for an entry not fit
 * for signing.
 * @param {{author: string, nick: string, id: string, seq: number, clock: number, ts: number, text: string,
 *   file?: import('./protocol.js').FileMeta, kind?: import('./protocol.js').EntryKind,
 *   re?: import('./protocol.js').EntryRef}} m
 * @param {string} context
 * @param {string | null} [to]
 */
export function entrySignedBytes(m, context, to = null) {
  /** @type {string} */
  let kind = m.file ? KIND_FILE : (m.kind ?? 'chat');
  let body = m.file ? fileBody(m.file) : m.kind ? entryBody(m.kind, m.re, m.text) : m.text;
  if (to !== null) {
    body = `${to}\n${kind}\n${body}`;
    kind = KIND_PRIVATE;
  }
  const { author, nick, id, seq, clock, ts } = m;
  return messageSignedBytes({ context, author, nick, id, seq, clock, ts, kind, body });
}

/**
 * Whether an entry is shown as a message of its own (a chat message, a
 * reply, a file offer); edits, deletions, reactions and room names change
 * what is shown instead.
 * @param {{kind?: string, file?: unknown}} m
 */
export function isShown(m) {
  return Boolean(m.file) || m.kind === undefined || m.kind === 'reply';
}

/**
 * Throws a {@link ProtocolError} (`empty`, `too_large`) unless `text` can be
 * sent as a message: not only white space, at most 16 KiB of UTF-8.
 * @param {string} text
 */
export function checkText(text) {
  if (isBlank(text)) throw new ProtocolError('empty', 'the message is empty');
  const size = utf8Length(text);
  if (size > MAX_TEXT_BYTES) {
    throw new ProtocolError(
      'too_large',
      `This message is ${size} bytes; messages may be at most ${MAX_TEXT_SIZE} (${MAX_TEXT_BYTES} bytes).`,
    );
  }
}

export class History {
  /**
   * @param {string} me our peer id
   * @param {Partial<Config>} [config]
   * @param {string | null} [party] in a private conversation, the other
   *   party: only its entries and ours are taken (see {@link History.between})
   */
  constructor(me, config = {}, party = null) {
    this.me = me;
    /** The other party of a private conversation, or null in a room. */
    this.party = party;
    /** What signatures are bound to. */
    this.context = 'code';
    /** @type {{alg: string, key: string} | null} our identity key, once known */
    this.ownKey = null;
    /** @type {Map<string, {alg: string, key: string}>} authors' keys as their hellos confirmed them (or kept from earlier) */
    this.keys = new Map();
    /** @type {Map<number, {from: string, entries: Pend[], bytes: number}>} checks asked for, not answered yet */
    this.pending = new Map();
    this.pendingBytes = 0;
    this.nextCheck = 1;
    /** @type {Config} */
    this.config = { ...DEFAULT_CONFIG, ...config };
    this.clock = 0;
    this.lastSeq = 0;
    /**
     * The highest number we used ourselves (in a message we sent, or one
     * kept in our storage); others may move `lastSeq` at most MAX_JUMP past it.
     */
    this.ownSeq = 0;
    /**
     * The clock of our newest message (sent or kept), or our clear mark;
     * others may move `clock` at most MAX_JUMP past it.
     */
    this.ownClock = 0;
    /** @type {Message[]} sorted by {@link compare} */
    this.log = [];
    /** @type {Set<string>} author + seq of the messages in the log */
    this.index = new Set();
    /** @type {Map<string, number>} per author: every number up to this one was seen */
    this.floor = new Map();
    /** @type {Map<string, number>} each member's acknowledgement of our messages */
    this.acks = new Map();
    /** @type {Map<number, string[]>} our messages: whom each was for */
    this.recipients = new Map();
    /** @type {Map<string, number>} when each peer's sync was last answered on its channel */
    this.answered = new Map();
    /** @type {Map<string, number>} who is typing, until when */
    this.typers = new Map();
    /** @type {number | null} */
    this.typingSent = null;
    /** Messages with a clock up to this one were cleared by this member. */
    this.cleared = 0;
    /** @type {Map<string, Message[]>} for each entry named in another's `re`, the entries in the log about it */
    this.refs = new Map();
  }

  /**
   * An empty log of the private conversation between `me` and `peer`: it
   * takes only entries authored by one of the two, whoever relays them.
   * @param {string} me
   * @param {string} peer
   * @param {Partial<Config>} [config]
   */
  static between(me, peer, config = {}) {
    return new History(me, config, peer);
  }

  /**
   * Whether `author`'s entries belong in this log.
   * @private
   * @param {string} author
   */
  admits(author) {
    return this.party === null || author === this.party || author === this.me;
  }

  /**
   * The bytes `m`'s author signs in this log: bound to its recipient in a
   * private conversation.
   * @private
   * @param {Message} m
   */
  signedBytes(m) {
    const to = this.party === null ? null : m.author === this.me ? this.party : this.me;
    return entrySignedBytes(m, this.context, to);
  }

  /** The messages, in order. */
  messages() {
    return this.log;
  }

  /**
   * @param {string} author
   * @param {number} seq
   */
  get(author, seq) {
    return this.log.find((m) => m.author === author && m.seq === seq);
  }

  /**
   * Where a message sits in {@link History.messages}, or -1.
   * @param {{clock: number, author: string, seq: number}} key
   */
  position(key) {
    const i = this.lowerBound(key);
    return i < this.log.length && compare(this.log[i], key) === 0 ? i : -1;
  }

  /**
   * Signs in `context` (a room, a pairing) with our identity key `key`
   * (`{alg, key}`, the key base64url).
   * @param {string} context
   * @param {{alg: string, key: string}} key
   */
  setIdentity(context, key) {
    this.context = context;
    this.ownKey = { alg: key.alg, key: key.key };
    this.keys.set(this.me, this.ownKey);
    return this;
  }

  /**
   * Numbers a message we are about to send and says what to sign: sign
   * `bytes` with our identity key and hand the signature to
   * {@link History#commit}. Nothing is recorded before.
   * @param {{id: string, nick: string, text: string, ts: number}} message
   * @returns {Draft}
   */
  draft({ id, nick, text, ts }) {
    checkText(text);
    return this.draftEntry({ id, nick, text, ts });
  }

  /**
   * Numbers a file offer we are about to make and says what to sign, as
   * {@link History#draft} does for a message.
   * @param {{id: string, nick: string, file: import('./protocol.js').FileMeta, ts: number}} offer
   * @returns {Draft}
   */
  draftFile({ id, nick, file, ts }) {
    return this.draftEntry({ id, nick, text: '', file, ts });
  }

  /**
   * Numbers an entry of `kind` we are about to add (a reply, an edit, a
   * deletion, a reaction or its withdrawal, about entry `re`; a room name)
   * and says what to sign, as {@link History#draft} does for a message.
   * `text` is the reply's or edit's text (not blank), the reaction, or the
   * room name (empty clears it; white space around it is trimmed); a
   * deletion has none. Only our own messages can be edited or deleted
   * (`not_yours`).
   * @param {{id: string, nick: string, kind: import('./protocol.js').EntryKind, text?: string,
   *   re?: import('./protocol.js').EntryRef, ts: number}} entry
   * @returns {Draft}
   */
  draftAbout({ id, nick, kind, text = '', re, ts }) {
    if (kind === 'reply' || kind === 'edit') checkText(text);
    const body = kind === 'room_name' ? text.trim() : text;
    if ((kind === 'edit' || kind === 'delete') && re && re.author !== this.me) {
      throw new ProtocolError('not_yours', 'only its author can edit or delete a message');
    }
    return this.draftEntry({ id, nick, text: body, kind, re, ts });
  }

  /**
   * What entry `author`/`seq` looks like now, after the entries about it
   * kept in the log, in the log's order: its author's last edit gives its
   * text (a file offer cannot be edited), its author's deletion makes it a
   * tombstone for good (reactions are dropped), and each member's last
   * reaction or withdrawal per emoji says whether that member gives it.
   * Entries about it by anyone but its author cannot edit or delete it, and
   * entries not verified yet change nothing until they are.
   * @param {string} author
   * @param {number} seq
   * @returns {EntryState}
   */
  entryState(author, seq) {
    /** @type {EntryState} */
    const state = { edited: false, deleted: false, reactions: [] };
    const about = this.refs.get(idOf(author, seq));
    if (!about) return state;
    const target = this.get(author, seq);
    const editable = !target?.file;
    /** @type {{emoji: string, giver: string, nick: string, on: boolean}[]} */
    const given = [];
    for (const m of about) {
      if (m.relayed_by) continue;
      if (m.kind === 'edit' && m.author === author && editable && !state.deleted) {
        state.text = m.text;
        state.edited = true;
      } else if (m.kind === 'delete' && m.author === author) {
        state.deleted = true;
      } else if (m.kind === 'react' || m.kind === 'unreact') {
        const on = m.kind === 'react';
        const entry = given.find((g) => g.emoji === m.text && g.giver === m.author);
        if (entry) {
          entry.nick = m.nick;
          entry.on = on;
        } else {
          given.push({ emoji: m.text, giver: m.author, nick: m.nick, on });
        }
      }
    }
    if (state.deleted) {
      delete state.text;
      state.edited = false;
      return state;
    }
    for (const { emoji, giver, nick, on } of given) {
      let reaction = state.reactions.find((r) => r.emoji === emoji);
      if (!reaction) {
        reaction = { emoji, by: [] };
        state.reactions.push(reaction);
      }
      if (on) reaction.by.push([giver, nick]);
    }
    state.reactions = state.reactions.filter((r) => r.by.length > 0);
    return state;
  }

  /**
   * The room's name: the text of the last verified `room_name` entry kept,
   * in the log's order (empty if it cleared the name); null if none.
   * @returns {RoomName | null}
   */
  roomName() {
    for (let i = this.log.length - 1; i >= 0; i -= 1) {
      const m = this.log[i];
      if (m.kind === 'room_name' && !m.file && !m.relayed_by) return { text: m.text, author: m.author, nick: m.nick };
    }
    return null;
  }

  /**
   * Notes `m` (now in the log) among the entries about its target.
   * @private
   * @param {Message} m
   */
  indexAbout(m) {
    if (!m.re) return;
    const target = idOf(m.re.author, m.re.seq);
    const list = this.refs.get(target) ?? [];
    let i = list.length;
    while (i > 0 && compare(list[i - 1], m) > 0) i -= 1;
    list.splice(i, 0, m);
    this.refs.set(target, list);
  }

  /**
   * Takes `m` (no longer in the log) out of the entries about its target.
   * @private
   * @param {Message} m
   */
  unindexAbout(m) {
    if (!m.re) return;
    const target = idOf(m.re.author, m.re.seq);
    const list = (this.refs.get(target) ?? []).filter((x) => x !== m);
    if (list.length > 0) this.refs.set(target, list);
    else this.refs.delete(target);
  }

  /**
   * @private
   * @param {{id: string, nick: string, text: string, file?: import('./protocol.js').FileMeta, ts: number,
   *   kind?: import('./protocol.js').EntryKind, re?: import('./protocol.js').EntryRef}} entry
   * @returns {Draft}
   */
  draftEntry({ id, nick, text, file, ts, kind, re }) {
    if (!this.ownKey) throw new ProtocolError('unsigned', 'no identity key to sign the message with');
    const message = kept({
      author: this.me,
      nick,
      id,
      seq: Math.min(this.lastSeq + 1, MAX_COUNTER),
      clock: Math.min(this.clock + 1, MAX_COUNTER),
      ts: Math.min(ts, MAX_TS),
      text,
      kind,
      re,
      alg: this.ownKey.alg,
      key: this.ownKey.key,
    });
    try {
      validateNick(nick);
      if (file) {
        const offer = kept({ ...message, file: parseFileMeta(file) });
        parsePeerMessage(chatEnvelope(offer));
        return { message: offer, bytes: this.signedBytes(offer) };
      }
      // The same checks a receiver makes.
      parsePeerMessage(chatEnvelope(message));
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      throw new ProtocolError('invalid', e.message);
    }
    return { message, bytes: this.signedBytes(message) };
  }

  /**
   * Records a message we send, drafted by {@link History#draft} and signed
   * (`sig`, base64url), to `recipients` (the other members in the room
   * now). Send the envelope to every channel that is up; the others get it
   * from the sync when theirs is. A draft whose number another message took
   * meanwhile throws `stale`: draft it again.
   * @param {Draft} draft
   * @param {string} sig
   * @param {string[]} recipients
   * @returns {{message: Message, envelope: string}}
   */
  commit(draft, sig, recipients) {
    if (draft.message.seq !== Math.min(this.lastSeq + 1, MAX_COUNTER)) {
      throw new ProtocolError('stale', "the message's number was taken meanwhile; draft it again");
    }
    const message = kept({ ...draft.message, sig });
    const envelope = chatEnvelope(message);
    this.typingSent = null;
    const to = [...new Set(recipients.filter((r) => r !== this.me))].sort();
    this.recipients.set(message.seq, to);
    this.ownSeq = Math.max(this.ownSeq, message.seq);
    this.ownClock = Math.max(this.ownClock, message.clock);
    this.insert(message);
    return { message, envelope };
  }

  /**
   * A peer's channel opened: returns the sync to send it, and a history
   * with our messages meant for it that it has not acknowledged.
   * @param {string} peer
   * @returns {Effect[]}
   */
  linkOpened(peer) {
    this.answered.delete(peer);
    /** @type {Effect[]} */
    const out = [{ send: { to: peer, text: this.syncEnvelope() } }];
    // Our messages meant for this peer and not acknowledged (sent while its
    // channel was not open) go at once, without waiting for its sync.
    const acked = this.acks.get(peer) ?? 0;
    const unacked = this.log.filter(
      (m) => m.author === this.me && m.sig && m.seq > acked && (this.recipients.get(m.seq) ?? []).includes(peer),
    );
    this.batches(peer, unacked, out);
    return out;
  }

  /**
   * A peer's channel closed.
   * @param {string} peer
   */
  linkClosed(peer) {
    this.answered.delete(peer);
    this.typers.delete(peer);
  }

  /** What we hold, per author, as a `sync` envelope. */
  syncEnvelope() {
    /** @type {Map<string, number>} */
    const have = new Map();
    if (this.lastSeq > 0) have.set(this.me, this.lastSeq);
    for (const author of [...this.floor.keys()].sort()) {
      if (have.size >= MAX_SYNC_AUTHORS) break;
      const upto = /** @type {number} */ (this.floor.get(author));
      if (upto > 0 && author !== this.me) have.set(author, upto);
    }
    return syncEnvelope(have);
  }

  /**
   * Handles an envelope from peer `from` (nickname `nick`) at `now` (ms).
   * Throws a {@link ProtocolError} for a malformed one. Messages come back
   * as a `verify` effect: they are taken once their signatures are checked
   * ({@link History#verified}).
   * @param {string} from
   * @param {string} nick
   * @param {string} text
   * @param {number} now
   * @returns {Effect[]}
   */
  handle(from, nick, text, now) {
    /** @type {Effect[]} */
    const out = [];
    let msg;
    try {
      msg = parsePeerMessage(text);
    } catch (e) {
      // Messages that break a rule but name their author and number count
      // as received, so that they cannot hold the author's later ones back:
      // when they come from their author (anyone else could name any
      // author and number).
      const salvaged = e instanceof ProtocolError ? salvagePeerMessage(text) : null;
      if (!salvaged) throw e;
      if (salvaged.kind === 'history') {
        this.check(from, salvaged.entries, text.length, out);
      } else if (from !== this.me) {
        this.typers.delete(from);
        this.take([{ flawed: true, author: from, seq: salvaged.seq }], out);
      }
      return out;
    }
    switch (msg.kind) {
      case 'chat': {
        if (from === this.me) break;
        this.typers.delete(from);
        // A live chat is signed with the key of the peer at the other end,
        // as its hello confirmed it.
        const key = this.keys.get(from);
        const { id, seq, clock, ts, text: body, file, entry, re, sig } = msg;
        const message = { author: from, nick, id, seq, clock, ts, text: body, alg: key?.alg, key: key?.key, sig };
        const full = file ? { ...message, file } : entry ? { ...message, kind: entry, re } : message;
        this.check(from, [full], text.length, out);
        break;
      }
      case 'ack':
        this.acked(from, msg.upto, out);
        break;
      case 'sync':
        this.answer(from, msg.have, now, out);
        break;
      case 'history':
        this.check(from, msg.messages, text.length, out);
        break;
      case 'typing':
        if (from !== this.me) {
          this.typers.set(from, now + this.config.typingTtlMs);
          out.push({ typing: from });
        }
        break;
      case 'unknown':
        // A log entry of a kind we do not know counts as received, so that
        // it cannot hold its author's later messages back.
        if (msg.seq !== undefined && from !== this.me) this.take([{ flawed: true, author: from, seq: msg.seq }], out);
        break;
      default:
        // Private envelopes belong to the conversation with `from`
        // (private.js), never to the room's log.
        break;
    }
    return out;
  }

  /**
   * Asks for the signatures of messages from `from` to be checked (or, if
   * there is nothing to check, takes them at once).
   * @private
   * @param {string} from
   * @param {(import('./protocol.js').HistoryRecord | import('./protocol.js').Flawed)[]} entries
   * @param {number} bytes
   * @param {Effect[]} out
   */
  check(from, entries, bytes, out) {
    /** @type {CheckItem[]} */
    const items = [];
    /** @type {Pend[]} */
    const pends = [];
    for (const entry of entries) {
      // Entries that do not belong in this log are left out before anything
      // is checked (in a private conversation, a third member's).
      if (!this.admits(entry.author)) continue;
      if ('flawed' in entry) {
        if (entry.author === from) pends.push({ flawed: [entry.author, entry.seq] });
        continue;
      }
      const message = kept(entry);
      // The key it must verify with: ours for our own; the author's as
      // confirmed; or, relayed with its author's key not known yet, the key
      // it carries (and it is marked as such).
      let key = this.keys.get(message.author) ?? null;
      if (!key && message.author !== this.me && message.author !== from) {
        message.relayed_by = from;
        key = message.alg && message.key ? { alg: message.alg, key: message.key } : null;
      }
      let signed = null;
      try {
        signed = this.signedBytes(message);
      } catch {
        // Not fit for signing: refused.
      }
      if (key && signed && message.sig) {
        message.alg = key.alg;
        message.key = key.key;
        items.push({ alg: key.alg, key: key.key, bytes: signed, sig: message.sig });
        pends.push({ check: message, item: items.length - 1 });
      } else {
        pends.push({ forged: [message.author, message.seq] });
      }
    }
    if (items.length === 0) {
      this.finish(from, pends, [], out);
      return;
    }
    if (this.pendingBytes + bytes > MAX_PENDING_BYTES) {
      throw new ProtocolError('busy', 'too many messages are waiting for their signatures to be checked');
    }
    const id = this.nextCheck++;
    this.pendingBytes += bytes;
    this.pending.set(id, { from, entries: pends, bytes });
    out.push({ verify: { id, items } });
  }

  /**
   * The signatures of check `id` were checked: `results` has one answer per
   * item, in order (missing ones count as failed). Takes the messages that
   * verified; the others are refused (`forged`).
   * @param {number} id
   * @param {boolean[]} results
   * @returns {Effect[]}
   */
  verified(id, results) {
    /** @type {Effect[]} */
    const out = [];
    const pending = this.pending.get(id);
    if (!pending) return out;
    this.pending.delete(id);
    this.pendingBytes -= pending.bytes;
    this.finish(pending.from, pending.entries, results, out);
    return out;
  }

  /** How many checks are waiting for {@link History#verified}. */
  get checksWaiting() {
    return this.pending.size;
  }

  /**
   * @private
   * @param {string} from
   * @param {Pend[]} entries
   * @param {boolean[]} results
   * @param {Effect[]} out
   */
  finish(from, entries, results, out) {
    /** @type {(Message | import('./protocol.js').Flawed)[]} */
    const taken = [];
    for (const entry of entries) {
      if ('check' in entry) {
        const message = entry.check;
        if (results[entry.item] !== true) {
          out.push({ forged: { author: message.author, seq: message.seq, by: from } });
          continue;
        }
        // Its author's key may have been confirmed meanwhile.
        if (message.relayed_by) {
          const known = this.keys.get(message.author);
          if (known && known.alg === message.alg && known.key === message.key) {
            delete message.relayed_by;
          } else if (known) {
            out.push({ forged: { author: message.author, seq: message.seq, by: from } });
            continue;
          }
        }
        taken.push(message);
      } else if ('flawed' in entry) {
        taken.push({ flawed: true, author: entry.flawed[0], seq: entry.flawed[1] });
      } else {
        out.push({ forged: { author: entry.forged[0], seq: entry.forged[1], by: from } });
      }
    }
    this.take(taken, out);
  }

  /**
   * `author`'s own hello verified with this key (`{alg, key}`, the key
   * base64url): messages of theirs kept as relayed and not yet verified are
   * verified if they were signed with it (`confirmed`), and removed as
   * forged if not (`removed`); later ones are checked against it.
   * @param {string} author
   * @param {{alg: string, key: string}} key
   * @returns {Effect[]}
   */
  keyConfirmed(author, key) {
    const confirmed = { alg: key.alg, key: key.key };
    this.keys.set(author, confirmed);
    /** @type {Effect[]} */
    const out = [];
    let lowest = null;
    for (const m of [...this.log]) {
      if (m.author !== author || !m.relayed_by) continue;
      if (m.alg === confirmed.alg && m.key === confirmed.key) {
        delete m.relayed_by;
        out.push({ confirmed: [author, m.seq] });
      } else {
        this.log.splice(this.log.indexOf(m), 1);
        this.index.delete(idOf(m.author, m.seq));
        this.unindexAbout(m);
        lowest = lowest === null ? m.seq : Math.min(lowest, m.seq);
        out.push({ removed: { author, seq: m.seq, by: m.relayed_by } });
      }
    }
    if (lowest !== null) {
      // The real messages with those numbers are still to come.
      let floor = Math.min(this.floorOf(author), lowest - 1);
      while (this.index.has(idOf(author, floor + 1))) floor += 1;
      this.floor.set(author, floor);
    }
    return out;
  }

  /**
   * Takes messages, and messages refused for breaking a rule (by author and
   * number), in order; then acknowledges each author whose contiguous count
   * grew.
   * @private
   * @param {(Message | import('./protocol.js').Flawed)[]} entries
   * @param {Effect[]} out
   */
  take(entries, out) {
    /** @type {Map<string, number>} */
    const before = new Map();
    for (const entry of entries) {
      if (!this.admits(entry.author)) continue;
      if (!before.has(entry.author)) before.set(entry.author, this.floorOf(entry.author));
      if (!('flawed' in entry)) {
        if (this.plausible(entry) && this.insert(entry)) out.push({ added: entry });
      } else if (entry.author !== this.me) {
        this.seen(entry.author, entry.seq);
        out.push({ refused: [entry.author, entry.seq] });
      }
    }
    for (const [author, was] of before) {
      const after = this.floorOf(author);
      if (after > was && author !== this.me) out.push({ send: { to: author, text: ackEnvelope(after) } });
    }
  }

  /**
   * Counts `author`'s message `seq` as seen without keeping it: it extends
   * the author's contiguous count when it is the next one (an author's
   * messages come in order).
   * @private
   * @param {string} author
   * @param {number} seq
   */
  seen(author, seq) {
    if (seq !== this.floorOf(author) + 1) return;
    let floor = seq;
    while (this.index.has(idOf(author, floor + 1))) floor += 1;
    this.floor.set(author, floor);
  }

  /**
   * We typed at `now`: the typing envelope to send to every open channel,
   * or null if one went out less than `typingIntervalMs` ago.
   * @param {number} now
   * @returns {string | null}
   */
  typed(now) {
    if (this.typingSent !== null && now < this.typingSent + this.config.typingIntervalMs) return null;
    this.typingSent = now;
    return typingEnvelope();
  }

  /**
   * Who is typing at `now`, sorted.
   * @param {number} now
   */
  typing(now) {
    for (const [author, until] of this.typers) if (until <= now) this.typers.delete(author);
    return [...this.typers.keys()].sort();
  }

  /**
   * When the earliest typing notice shown at `now` runs out, or null.
   * @param {number} now
   * @returns {number | null}
   */
  typingDeadline(now) {
    let next = null;
    for (const until of this.typers.values()) if (until > now && (next === null || until < next)) next = until;
    return next;
  }

  /**
   * Who has our message number `seq`.
   * @param {number} seq
   * @returns {{acked: string[], waiting: string[]}}
   */
  delivery(seq) {
    /** @type {{acked: string[], waiting: string[]}} */
    const out = { acked: [], waiting: [] };
    for (const member of this.recipients.get(seq) ?? []) {
      if ((this.acks.get(member) ?? 0) >= seq) out.acked.push(member);
      else out.waiting.push(member);
    }
    return out;
  }

  /** @returns {Saved} everything worth saving */
  save() {
    return {
      messages: [...this.log],
      recipients: [...this.recipients].sort((a, b) => a[0] - b[0]),
      acks: [...this.acks].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
      cleared: this.cleared,
    };
  }

  /**
   * Puts back what {@link History.save} gave; returns the messages added,
   * in order.
   * @param {Saved} saved
   */
  restore(saved) {
    this.cleared = Math.max(this.cleared, saved.cleared ?? 0);
    this.clock = Math.max(this.clock, this.cleared);
    this.ownClock = Math.max(this.ownClock, this.cleared);
    for (const m of saved.messages) if (m.author === this.me) this.ownClock = Math.max(this.ownClock, m.clock);
    /** @type {Message[]} */
    const added = [];
    for (const saved_ of saved.messages) {
      if (!this.admits(saved_.author)) continue;
      const message = kept(saved_);
      try {
        parsePeerMessage(historyEnvelope([record(message)]));
      } catch {
        continue;
      }
      // Keys of verified messages are known from earlier.
      if (!message.relayed_by && message.sig && message.author !== this.me && !this.keys.has(message.author)) {
        this.keys.set(message.author, { alg: message.alg, key: message.key });
      }
      if (this.insert(message)) added.push(message);
    }
    for (const [seq, recipients] of saved.recipients) {
      if (this.index.has(idOf(this.me, seq)) && !this.recipients.has(seq)) this.recipients.set(seq, recipients);
    }
    for (const [member, upto] of saved.acks) {
      this.acks.set(member, Math.max(this.acks.get(member) ?? 0, Math.min(upto, this.lastSeq)));
    }
    this.ownSeq = Math.max(this.ownSeq, this.lastSeq);
    return added.filter((m) => this.index.has(idOf(m.author, m.seq))).sort(compare);
  }

  /**
   * Forgets every message and keeps them from coming back from other
   * members' history; our numbering and clock go on.
   */
  clear() {
    this.cleared = this.clock;
    this.ownClock = Math.max(this.ownClock, this.cleared);
    this.log = [];
    this.index.clear();
    this.refs.clear();
    this.acks.clear();
    this.recipients.clear();
  }

  /**
   * @private
   * @param {string} author
   */
  floorOf(author) {
    return this.floor.get(author) ?? 0;
  }

  /**
   * @private
   * @param {string} by
   * @param {number} upto
   * @param {Effect[]} out
   */
  acked(by, upto, out) {
    const capped = Math.min(upto, this.lastSeq);
    if (capped > (this.acks.get(by) ?? 0)) {
      this.acks.set(by, capped);
      out.push({ acked: { by, upto: capped } });
    }
  }

  /**
   * @private
   * @param {string} from
   * @param {Record<string, number>} have
   * @param {number} now
   * @param {Effect[]} out
   */
  answer(from, have, now, out) {
    const mine = Object.hasOwn(have, this.me) ? have[this.me] : undefined;
    if (mine !== undefined) {
      // The peer holds more of ours than we remember sending (we lost our
      // storage): never reuse those numbers. A claim too far past what we
      // know ourselves is not believed.
      if (mine > this.lastSeq && mine <= this.ownSeq + MAX_JUMP) {
        this.lastSeq = mine;
        this.clock = Math.max(this.clock, mine);
      }
      this.acked(from, mine, out);
    }
    const last = this.answered.get(from);
    if (last !== undefined && now < last + this.config.syncIntervalMs) return;
    this.answered.set(from, now);
    // Messages kept from before signing are never passed on.
    this.batches(
      from,
      this.log.filter((m) => m.sig && m.seq > (Object.hasOwn(have, m.author) ? have[m.author] : 0)),
      out,
    );
  }

  /**
   * Adds `history` envelopes to `to` holding `messages`, in order, each
   * within the size limit.
   * @private
   * @param {string} to
   * @param {Message[]} messages
   * @param {Effect[]} out
   */
  batches(to, messages, out) {
    /** @type {Message[]} */
    let batch = [];
    let size = 0;
    for (const message of messages) {
      const recordSize = approximateSize(message);
      if (batch.length > 0 && (size + recordSize > this.config.batchBytes || batch.length >= MAX_HISTORY_BATCH)) {
        out.push({ send: { to, text: historyEnvelope(batch.map(record)) } });
        batch = [];
        size = 0;
      }
      size += recordSize;
      batch.push(message);
    }
    if (batch.length > 0) out.push({ send: { to, text: historyEnvelope(batch.map(record)) } });
  }

  /**
   * The index of the first message not before `key`.
   * @private
   * @param {{clock: number, author: string, seq: number}} key
   */
  lowerBound(key) {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(this.log[mid], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Whether a message from the network could be what it says: one that
   * claims to be ours may not be numbered more than MAX_JUMP past the
   * numbers we used ourselves.
   * @private
   * @param {Message} message
   */
  plausible(message) {
    return message.author !== this.me || message.seq <= this.ownSeq + MAX_JUMP;
  }

  /**
   * Adds a message unless it is known or older than everything kept in a
   * full log.
   * @private
   * @param {Message} message
   * @returns {boolean} whether it was added
   */
  insert(message) {
    const id = idOf(message.author, message.seq);
    if (message.seq <= this.floorOf(message.author) || this.index.has(id)) return false;
    if (message.clock <= this.cleared) {
      // Cleared here: kept away, but seen, so that the author's later
      // messages are acknowledged. (An author's cleared messages are the
      // first ones by number, and arrive in order.)
      this.seen(message.author, message.seq);
      return false;
    }
    if (this.log.length >= this.config.capacity && this.log.length > 0 && compare(message, this.log[0]) < 0) {
      return false;
    }
    // Lamport: at least the message's clock, but never more than MAX_JUMP
    // past our own newest, so that no one can push it to the ceiling.
    this.clock = Math.max(this.clock, Math.min(message.clock, this.ownClock + MAX_JUMP));
    if (message.author === this.me) this.lastSeq = Math.max(this.lastSeq, message.seq);
    this.index.add(id);
    const author = message.author;
    const entry = kept(message);
    this.log.splice(this.lowerBound(message), 0, entry);
    this.indexAbout(entry);
    let floor = this.floorOf(author);
    while (this.index.has(idOf(author, floor + 1))) floor += 1;
    this.floor.set(author, floor);
    while (this.log.length > this.config.capacity) {
      const old = /** @type {Message} */ (this.log.shift());
      this.index.delete(idOf(old.author, old.seq));
      this.unindexAbout(old);
      if (old.author === this.me) this.recipients.delete(old.seq);
    }
    if (this.floor.size > 2 * MAX_SYNC_AUTHORS) {
      const present = new Set(this.log.map((m) => m.author));
      for (const a of this.floor.keys()) if (!present.has(a)) this.floor.delete(a);
    }
    return true;
  }
}

/**
 * About how many bytes a message takes in a `history` envelope: the same
 * estimate as the Rust crate's.
 * @param {Message} m
 */
function approximateSize(m) {
  const file = m.file ? 220 + utf8Length(m.file.fid) + utf8Length(m.file.type) + stringSize(m.file.name) : 0;
  // Other kinds name themselves (20) and their target (40 and its author).
  const about = (m.kind && !m.file ? 20 : 0) + (m.re ? 40 + utf8Length(m.re.author) : 0);
  return (
    120 +
    about +
    utf8Length(m.author) +
    utf8Length(m.nick) +
    utf8Length(m.id) +
    utf8Length(m.alg) +
    utf8Length(m.key) +
    utf8Length(m.sig) +
    stringSize(m.text) +
    file
  );
}

/**
 * About how many bytes a string takes in JSON: its UTF-8, and 5 more for
 * each character written as a `\u` escape.
 * @param {string} text
 */
function stringSize(text) {
  let escaped = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) escaped += 1;
  }
  return utf8Length(text) + escaped * 5;
}
