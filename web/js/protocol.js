// @ts-check
/**
 * The peerchat wire protocol, version 1: the browser's side of it.
 *
 * Mirrors the Rust crate `peerchat-protocol`; both are checked against the
 * shared vectors in `tests/vectors/protocol.json`. `docs/protocol.md` is the
 * normative description.
 * @module
 */

export const PROTOCOL_VERSION = 2;
export const ENVELOPE_VERSION = 2;
/** Longest chat text, in bytes of UTF-8. */
export const MAX_TEXT_BYTES = 16 * 1024;
/** The limit as people read it. */
export const MAX_TEXT_SIZE = `${MAX_TEXT_BYTES / 1024} KiB`;
/** Longest nickname, in Unicode code points. */
export const MAX_NICK_CHARS = 32;
export const MIN_ROOM_ID_LEN = 22;
export const MAX_ROOM_ID_LEN = 64;
/** Shortest member key (the `key` of `join`), in characters. */
export const MIN_KEY_LEN = 22;
/** Longest member key, in characters. */
export const MAX_KEY_LEN = 64;
export const MAX_ID_LEN = 64;
/** Latest timestamp: the last instant a `Date` can hold. */
export const MAX_TS = 8.64e15;

/** An error with a stable code from the protocol's list. */
export class ProtocolError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    /** @type {string | undefined} the field at fault, where one is named */
    this.field = undefined;
  }
}

const ID_ALPHABET = /^[A-Za-z0-9_-]+$/;
// C0/C1 controls, and every default-ignorable code point (characters that
// show as nothing and can disguise a name). The second line is generated
// from the Rust side's Unicode data by crates/protocol/tests/unicode_tables.rs.
const CONTROL = /\p{Cc}/u;
export const DEFAULT_IGNORABLE = /[\u{AD}\u{34F}\u{61C}\u{115F}-\u{1160}\u{17B4}-\u{17B5}\u{180B}-\u{180F}\u{200B}-\u{200F}\u{202A}-\u{202E}\u{2060}-\u{206F}\u{3164}\u{FE00}-\u{FE0F}\u{FEFF}\u{FFA0}\u{FFF0}-\u{FFF8}\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}]/u;

/**
 * Checks a room id: 22 to 64 characters of `A-Z a-z 0-9 - _`.
 * @param {string} room
 */
export function validateRoomId(room) {
  if (room.length < MIN_ROOM_ID_LEN) {
    throw new ProtocolError('bad_room', 'must be at least 22 characters (128 random bits)');
  }
  if (room.length > MAX_ROOM_ID_LEN) {
    throw new ProtocolError('bad_room', 'must be at most 64 characters');
  }
  if (!ID_ALPHABET.test(room)) {
    throw new ProtocolError('bad_room', "may contain only A-Z, a-z, 0-9, '-' and '_'");
  }
}

/**
 * Checks a member key (the `key` of `join`): 22 to 64 characters of
 * `A-Z a-z 0-9 - _`. {@link randomId} makes a good one.
 * @param {string} key
 */
export function validateKey(key) {
  if (key.length < MIN_KEY_LEN) {
    throw new ProtocolError('bad_key', 'must be at least 22 characters (128 random bits)');
  }
  if (key.length > MAX_KEY_LEN) {
    throw new ProtocolError('bad_key', 'must be at most 64 characters');
  }
  if (!ID_ALPHABET.test(key)) {
    throw new ProtocolError('bad_key', "may contain only A-Z, a-z, 0-9, '-' and '_'");
  }
}

/**
 * The peer id the server gives the member with this key in this room: the
 * first 8 bytes of SHA-256("peerchat peer id\n" + room + "\n" + key) as 16
 * lowercase hex digits.
 * @param {string} room
 * @param {string} key
 * @returns {Promise<string>}
 */
export async function peerIdFromKey(room, key) {
  const input = encoder.encode(`peerchat peer id\n${room}\n${key}`);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', input));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Checks a nickname: 1 to 32 code points, no leading or trailing white
 * space, no control characters and no default-ignorable code points.
 * @param {string} nick
 */
export function validateNick(nick) {
  if (nick.length === 0) throw new ProtocolError('bad_nick', 'must not be empty');
  if ([...nick].length > MAX_NICK_CHARS) {
    throw new ProtocolError('bad_nick', 'must be at most 32 characters');
  }
  if (nick.trim() !== nick) {
    throw new ProtocolError('bad_nick', 'must not start or end with white space');
  }
  if (CONTROL.test(nick) || DEFAULT_IGNORABLE.test(nick)) {
    throw new ProtocolError(
      'bad_nick',
      'must not contain control characters or invisible (default-ignorable) ones',
    );
  }
}

/** Bytes of UTF-8 in `text`. */
const encoder = new TextEncoder();
/** @param {string} text */
export function utf8Length(text) {
  return encoder.encode(text).length;
}

/**
 * Whether a text is empty or only white space (as Unicode defines it: the
 * property White_Space), so not worth sending.
 * @param {string} text
 */
export function isBlank(text) {
  return /^\p{White_Space}*$/u.test(text);
}

/**
 * A fresh random id of 128 bits as 22 base64url characters: room ids,
 * member keys, message ids and connection ids.
 */
export function randomId() {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * Bytes in base64url, without padding.
 * @param {Uint8Array} bytes
 */
export function base64url(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// ---- Client to server ----------------------------------------------------

/**
 * A `join`. With a `key`, the peer id is derived from it and the membership
 * can be resumed on a new connection; without, the server picks a random id.
 * @param {string} room
 * @param {string} nick
 * @param {string} [key]
 * @returns {{type: 'join', v: number, room: string, nick: string, key?: string}}
 */
export function joinMessage(room, nick, key) {
  const join = { type: /** @type {const} */ ('join'), v: PROTOCOL_VERSION, room, nick };
  return key === undefined ? join : { ...join, key };
}

/**
 * A `leave`: the member leaves for good, the room is told at once, and the
 * server closes the connection.
 * @returns {{type: 'leave'}}
 */
export function leaveMessage() {
  return { type: 'leave' };
}

/**
 * Asks for a new nickname in the room: answered by `renamed` or an error.
 * @param {string} nick
 */
export function renameMessage(nick) {
  return { type: 'rename', nick };
}

/**
 * @param {string} to
 * @param {object} payload
 */
export function signalMessage(to, payload) {
  return { type: 'signal', to, payload };
}

// ---- Server to client ----------------------------------------------------

/** @typedef {{id: string, nick: string}} Member */
/** @typedef {{urls: string[], username?: string, credential?: string}} IceServer */
/**
 * @typedef {{type: 'joined', v: number, room: string, you: Member, members: Member[], ice_servers: IceServer[], resumed: boolean}
 *   | {type: 'peer_joined', peer: Member}
 *   | {type: 'peer_left', id: string}
 *   | {type: 'renamed', you: Member}
 *   | {type: 'peer_renamed', peer: Member}
 *   | {type: 'signal', from: string, payload: Record<string, unknown>}
 *   | {type: 'ice_servers', ice_servers: IceServer[]}
 *   | {type: 'error', code: string, message: string, to?: string}} ServerMessage
 */

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string} field
 */
function str(obj, field) {
  const value = obj[field];
  if (value === undefined) throw new ProtocolError('bad_message', `field \`${field}\` is missing`);
  if (typeof value !== 'string') {
    throw new ProtocolError('bad_message', `field \`${field}\` must be a string`);
  }
  return value;
}

/**
 * @param {unknown} value
 * @param {string} field
 * @returns {Member}
 */
function member(value, field) {
  if (!isObject(value)) throw new ProtocolError('bad_message', `field \`${field}\` must be a member object`);
  return { id: str(value, 'id'), nick: str(value, 'nick') };
}

/**
 * @param {unknown} value
 * @returns {IceServer}
 */
function iceServer(value) {
  if (!isObject(value) || !Array.isArray(value.urls) || !value.urls.every((u) => typeof u === 'string')) {
    throw new ProtocolError('bad_message', 'field `ice_servers` must be a list of ICE servers');
  }
  /** @type {IceServer} */
  const server = { urls: /** @type {string[]} */ (value.urls) };
  if (typeof value.username === 'string') server.username = value.username;
  if (typeof value.credential === 'string') server.credential = value.credential;
  return server;
}

/**
 * Parses JSON text into an object, classifying failures like the server.
 * @param {string} text
 * @param {boolean} [wellFormed] read strings as Unicode text (envelopes)
 */
function parseObject(text, wellFormed = false) {
  let value;
  try {
    // Strings as Unicode text: an escaped surrogate that is not half of a
    // pair reads as U+FFFD (as on the Rust side, whose strings cannot hold
    // it).
    value = wellFormed && text.includes('\\u') ? JSON.parse(text, toWellFormed) : JSON.parse(text);
  } catch (e) {
    throw new ProtocolError('bad_json', `not valid JSON: ${/** @type {Error} */ (e).message}`);
  }
  if (!isObject(value)) throw new ProtocolError('bad_message', 'a message must be a JSON object');
  return value;
}

/**
 * A JSON.parse reviver: strings with every lone surrogate as U+FFFD.
 * @param {string} _key
 * @param {unknown} value
 */
function toWellFormed(_key, value) {
  return typeof value === 'string' ? value.replace(/\p{Cs}/gu, '\uFFFD') : value;
}

/**
 * Parses and validates a server message. Throws a {@link ProtocolError};
 * code `unknown_type` means a newer server sent something this client may
 * ignore.
 * @param {string} text
 * @returns {ServerMessage}
 */
export function parseServerMessage(text) {
  const obj = parseObject(text);
  const type = str(obj, 'type');
  switch (type) {
    case 'joined': {
      if (obj.v !== PROTOCOL_VERSION) {
        throw new ProtocolError('unsupported_version', `protocol version ${String(obj.v)} is not supported`);
      }
      if (!Array.isArray(obj.members)) {
        throw new ProtocolError('bad_message', 'field `members` must be a list of members');
      }
      const ice = obj.ice_servers === undefined ? [] : obj.ice_servers;
      if (!Array.isArray(ice)) throw new ProtocolError('bad_message', 'field `ice_servers` must be a list of ICE servers');
      const resumed = obj.resumed === undefined || obj.resumed === null ? false : obj.resumed;
      if (typeof resumed !== 'boolean') throw new ProtocolError('bad_message', 'field `resumed` must be true or false');
      return {
        type,
        v: PROTOCOL_VERSION,
        room: str(obj, 'room'),
        you: member(obj.you, 'you'),
        members: obj.members.map((m) => member(m, 'members')),
        ice_servers: ice.map(iceServer),
        resumed,
      };
    }
    case 'peer_joined':
      return { type, peer: member(obj.peer, 'peer') };
    case 'peer_left':
      return { type, id: str(obj, 'id') };
    case 'renamed':
      return { type, you: member(obj.you, 'you') };
    case 'peer_renamed':
      return { type, peer: member(obj.peer, 'peer') };
    case 'signal': {
      const from = str(obj, 'from');
      if (!isObject(obj.payload)) throw new ProtocolError('bad_message', 'field `payload` must be an object');
      return { type, from, payload: obj.payload };
    }
    case 'ice_servers': {
      if (!Array.isArray(obj.ice_servers)) {
        throw new ProtocolError('bad_message', 'field `ice_servers` must be a list of ICE servers');
      }
      return { type, ice_servers: obj.ice_servers.map(iceServer) };
    }
    case 'error':
      return {
        type,
        code: str(obj, 'code'),
        message: obj.message === undefined ? '' : str(obj, 'message'),
        ...(typeof obj.to === 'string' ? { to: obj.to } : {}),
      };
    default:
      throw new ProtocolError('unknown_type', `unknown message type \`${type}\``);
  }
}

// ---- Peer to peer (data channel) ------------------------------------------

/** Largest sequence number or Lamport clock (2^53 - 1). */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
/**
 * How far another member's word may move a receiver's clock, or its own
 * sequence numbers, past what it knows itself (2^30).
 */
export const MAX_JUMP = 2 ** 30;
/** Most messages in one `history` envelope. */
export const MAX_HISTORY_BATCH = 1000;
/** Most authors in one `sync` envelope. */
export const MAX_SYNC_AUTHORS = 1024;

/** Smallest piece size of a file, in bytes (16 KiB, one chunk). */
export const MIN_PIECE = 2 ** 14;
/** Largest piece size of a file, in bytes (16 MiB). */
export const MAX_PIECE = 2 ** 24;
/** Most pieces a file may have (its hash list is then 2 MiB). */
export const MAX_PIECES = 2 ** 16;
/** Longest file name in an offer, in bytes of UTF-8. */
export const MAX_NAME_BYTES = 1024;
/** Longest media type in an offer, in bytes. */
export const MAX_TYPE_BYTES = 127;
/** The SHA-256 of nothing: the `sha256` and `root` of an empty file. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * What an offer says about a file (protocol version 2, "Files"): `type` is
 * its media type, `sha256` the SHA-256 of the whole file and `root` that of
 * its pieces' concatenated SHA-256 hashes, both in lowercase hex.
 * @typedef {{fid: string, name: string, size: number, type: string, piece: number, sha256: string, root: string}} FileMeta
 */

/**
 * The entry another entry answers, changes or reacts to: its author and the
 * author's number for it.
 * @typedef {{author: string, seq: number}} EntryRef
 * A log entry as its author sends it: a chat message, a file offer
 * (`file` set, `text` empty), or (`entry` set) an entry of another kind
 * ({@link ENTRY_KINDS}) about entry `re` or naming the room; `sig`
 * (version 2) the author's signature, base64url, checked by the message log.
 * @typedef {{id: string, seq: number, clock: number, ts: number, text: string, file?: FileMeta,
 *   entry?: EntryKind, re?: EntryRef, sig?: string}} Chat
 * @typedef {'reply' | 'edit' | 'delete' | 'react' | 'unreact' | 'room_name'} EntryKind
 * A message in a `history` envelope: a log entry with its author, its
 * `kind` (for kinds other than chat and file), and (version 2) the author's
 * identity key (`alg`, `key`).
 * @typedef {{author: string, nick: string, id: string, seq: number, clock: number, ts: number, text: string,
 *   file?: FileMeta, kind?: EntryKind, re?: EntryRef, alg?: string, key?: string, sig?: string}} HistoryRecord
 * @typedef {({kind: 'chat'} & Chat)
 *   | {kind: 'ack', upto: number}
 *   | {kind: 'sync', have: Record<string, number>}
 *   | {kind: 'history', messages: HistoryRecord[]}
 *   | {kind: 'typing'}
 *   | {kind: 'private', body: string}
 *   | {kind: 'unknown', type: string, seq?: number}} PeerMessage
 */

/**
 * The kinds of log entries besides chat messages and file offers: each
 * travels as an envelope of that `type`, and as a `history` record with that
 * `kind`.
 * @type {readonly EntryKind[]}
 */
export const ENTRY_KINDS = ['reply', 'edit', 'delete', 'react', 'unreact', 'room_name'];

/** The kinds whose entries name another entry in `re`. */
export const TARGET_KINDS = new Set(['reply', 'edit', 'delete', 'react', 'unreact']);

/** Longest reaction (an emoji), in bytes of UTF-8. */
export const MAX_REACTION_BYTES = 32;

/** Longest room name, in bytes of UTF-8. */
export const MAX_ROOM_NAME_BYTES = 256;

/**
 * Whether `kind` names an entry kind this client knows, besides chat and file.
 * @param {unknown} kind
 * @returns {kind is EntryKind}
 */
export function isEntryKind(kind) {
  return typeof kind === 'string' && /** @type {readonly string[]} */ (ENTRY_KINDS).includes(kind);
}

/**
 * Whether an entry of `kind` writes its `text`: all but deletions, and an
 * empty room name leaves it out.
 * @param {EntryKind} kind
 * @param {string} text
 */
function hasText(kind, text) {
  return kind !== 'delete' && !(kind === 'room_name' && text === '');
}

/**
 * A {@link ProtocolError} about field `field` of a file offer.
 * @param {string} field
 * @param {string} reason
 */
function badFile(field, reason) {
  const error = new ProtocolError('bad_message', `field \`${field}\` ${reason}`);
  error.field = field;
  return error;
}

const TYPE_PART = /^[a-z0-9!#$&^_.+-]+$/;
const HASH = /^[0-9a-f]{64}$/;

/**
 * Checks a media type: `TYPE/SUBTYPE`, each 1 or more of `a-z 0-9` and
 * `! # $ & ^ _ . + -`, at most 127 bytes.
 * @param {string} type
 */
export function validateMediaType(type) {
  const slash = type.indexOf('/');
  const kind = type.slice(0, Math.max(slash, 0));
  const sub = type.slice(slash + 1);
  if (slash < 0 || type.length > MAX_TYPE_BYTES || !TYPE_PART.test(kind) || !TYPE_PART.test(sub)) {
    throw badFile('type', 'must be a media type TYPE/SUBTYPE in lower case, at most 127 bytes');
  }
}

/**
 * How many pieces a file has.
 * @param {{size: number, piece: number}} meta
 */
export function pieceCount({ size, piece }) {
  return Math.ceil(size / piece);
}

/**
 * Reads and checks a file offer's object (`file` of a `file` entry).
 * Throws a {@link ProtocolError} whose `field` names what is wrong.
 * @param {unknown} value
 * @returns {FileMeta}
 */
export function parseFileMeta(value) {
  if (!isObject(value)) throw badFile('file', 'must be an object');
  /** @param {string} field */
  const string = (field) => {
    const v = value[field];
    if (v === undefined) throw badFile(field, 'is missing');
    if (typeof v !== 'string') throw badFile(field, 'must be a string');
    return v;
  };
  /** @param {string} field */
  const number = (field) => {
    const v = value[field];
    if (v === undefined) throw badFile(field, 'is missing');
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw badFile(field, 'must be an integer');
    return v + 0;
  };
  /** @param {string} field */
  const hash = (field) => {
    const v = string(field);
    if (!HASH.test(v)) throw badFile(field, 'must be 64 lowercase hex digits');
    return v;
  };
  const meta = {
    fid: string('fid'),
    name: string('name'),
    size: number('size'),
    type: string('type'),
    piece: number('piece'),
    sha256: hash('sha256'),
    root: hash('root'),
  };
  validateFileMeta(meta);
  return meta;
}

/**
 * Checks every rule of an offer.
 * @param {FileMeta} meta
 */
export function validateFileMeta(meta) {
  if (meta.fid.length === 0 || meta.fid.length > MAX_ID_LEN || !ID_ALPHABET.test(meta.fid)) {
    throw badFile('fid', 'must be 1 to 64 characters of A-Z, a-z, 0-9, - and _');
  }
  if (meta.name.length === 0) throw badFile('name', 'must not be empty');
  if (utf8Length(meta.name) > MAX_NAME_BYTES) throw badFile('name', `must be at most ${MAX_NAME_BYTES} bytes of UTF-8`);
  if (!Number.isSafeInteger(meta.size) || meta.size < 0) throw badFile('size', 'must be an integer from 0 to 9007199254740991');
  validateMediaType(meta.type);
  const p = meta.piece;
  if (!Number.isSafeInteger(p) || p < MIN_PIECE || p > MAX_PIECE || (p & (p - 1)) !== 0) {
    throw badFile('piece', 'must be a power of two from 16384 to 16777216');
  }
  if (pieceCount(meta) > MAX_PIECES) throw badFile('piece', 'must cut the file into at most 65536 pieces');
  if (meta.size === 0 && (meta.sha256 !== EMPTY_SHA256 || meta.root !== EMPTY_SHA256)) {
    throw badFile('sha256', 'of an empty file must be the SHA-256 of nothing');
  }
}

/**
 * The BODY the author of an offer signs (KIND `file`): FID, SIZE, TYPE,
 * PIECE, SHA256, ROOT and NAME on lines of their own, the name last.
 * @param {FileMeta} meta
 */
export function fileBody({ fid, size, type, piece, sha256, root, name }) {
  return [fid, size, type, piece, sha256, root, name].join('\n');
}

/**
 * An offer's fields in the order the protocol writes them.
 * @param {FileMeta} meta
 * @returns {FileMeta}
 */
function fileObject({ fid, name, size, type, piece, sha256, root }) {
  return { fid, name, size, type, piece, sha256, root };
}

/**
 * An envelope as JSON text, its fields in the order the protocol writes them.
 * @param {string} type
 * @param {object} body
 */
function envelope(type, body) {
  return JSON.stringify({ v: ENVELOPE_VERSION, type, ...body });
}

/**
 * A log entry's envelope as JSON text: a `chat`, a `file`, or the envelope
 * of its kind (`entry`, or `kind` as a message in the log names it).
 * @param {Chat & {kind?: EntryKind}} chat
 */
export function chatEnvelope({ id, seq, clock, ts, text, file, entry: given, kind, re, sig }) {
  if (file) return envelope('file', { id, seq, clock, ts, file: fileObject(file), sig });
  const entry = given ?? kind;
  if (entry) {
    const body = hasText(entry, text) ? text : undefined;
    return envelope(entry, { id, seq, clock, ts, text: body, re: re && { author: re.author, seq: re.seq }, sig });
  }
  return envelope('chat', { id, seq, clock, ts, text, sig });
}

/**
 * A `private` envelope around `inner`, the JSON text of an envelope of the
 * private conversation with the peer at the other end of the channel.
 * @param {string} inner
 */
export function privateEnvelope(inner) {
  return `{"v":${ENVELOPE_VERSION},"type":"private","body":${inner}}`;
}

/** @param {number} upto */
export function ackEnvelope(upto) {
  return envelope('ack', { upto });
}

/**
 * A `sync` envelope; authors are written in sorted order.
 * @param {Map<string, number>} have
 */
export function syncEnvelope(have) {
  /** @type {Record<string, number>} */
  const sorted = {};
  for (const author of [...have.keys()].sort()) sorted[author] = /** @type {number} */ (have.get(author));
  return envelope('sync', { have: sorted });
}

/** @param {HistoryRecord[]} messages */
export function historyEnvelope(messages) {
  return envelope('history', {
    messages: messages.map(({ author, nick, id, seq, clock, ts, text, file, kind, re, alg, key, sig }) => {
      if (file) return { author, nick, id, seq, clock, ts, kind: 'file', file: fileObject(file), alg, key, sig };
      if (kind) {
        const body = hasText(kind, text) ? text : undefined;
        const target = re && { author: re.author, seq: re.seq };
        return { author, nick, id, seq, clock, ts, kind, text: body, re: target, alg, key, sig };
      }
      return { author, nick, id, seq, clock, ts, text, alg, key, sig };
    }),
  });
}

export function typingEnvelope() {
  return envelope('typing', {});
}

/**
 * @param {Record<string, unknown>} obj
 * @param {string} field
 * @param {number} min 0 or 1
 */
function counter(obj, field, min) {
  const n = obj[field];
  if (n === undefined) throw new ProtocolError('bad_message', `field \`${field}\` is missing`);
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
    throw new ProtocolError('bad_message', `field \`${field}\` must be an integer from ${min} to ${MAX_COUNTER}`);
  }
  return n + 0; // -0 is 0
}

/**
 * @param {unknown} value
 * @param {string} field
 */
function checkId(value, field) {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LEN || !ID_ALPHABET.test(value)) {
    throw new ProtocolError('bad_message', `field \`${field}\` must be 1 to 64 characters of A-Z, a-z, 0-9, - and _`);
  }
  return value;
}

/**
 * The fields of a log entry, checked: a chat message's, or with `file` a
 * file offer's.
 * @param {Record<string, unknown>} obj
 * @param {boolean} [file]
 * @returns {Chat}
 */
function chatFields(obj, file = false) {
  const id = checkId(obj.id, 'id');
  const seq = counter(obj, 'seq', 1);
  const clock = counter(obj, 'clock', 1);
  const ts = obj.ts;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0 || ts > MAX_TS) {
    throw new ProtocolError('bad_message', 'field `ts` must be an integer from 0 to 8640000000000000');
  }
  const when = ts + 0; // -0 is 0
  if (file) {
    if (!('file' in obj)) throw badFile('file', 'is missing');
    /** @type {Chat} */
    const offer = { id, seq, clock, ts: when, text: '', file: parseFileMeta(obj.file) };
    const sig = optionalString(obj, 'sig');
    if (sig !== undefined) offer.sig = sig;
    return offer;
  }
  const body = str(obj, 'text');
  if (body.length === 0) throw new ProtocolError('bad_message', 'field `text` must not be empty');
  if (utf8Length(body) > MAX_TEXT_BYTES) {
    throw new ProtocolError('bad_message', `field \`text\` must be at most ${MAX_TEXT_BYTES} bytes of UTF-8`);
  }
  /** @type {Chat} */
  const chat = { id, seq, clock, ts: when, text: body };
  const sig = optionalString(obj, 'sig');
  if (sig !== undefined) chat.sig = sig;
  return chat;
}

const RE_RULE = 'field `re` must name an entry: {"author": a peer id, "seq": 1 to 9007199254740991}';

/**
 * The fields of an entry of `kind` (other than chat and file), checked.
 * @param {Record<string, unknown>} obj
 * @param {EntryKind} kind
 * @returns {Chat}
 */
function entryFields(obj, kind) {
  const bad = (/** @type {string} */ reason) => new ProtocolError('bad_message', reason);
  let text = '';
  if (kind === 'delete') {
    if ('text' in obj) throw bad('field `text` must be left out of a deletion');
  } else if (kind !== 'room_name' || 'text' in obj) {
    text = str(obj, 'text');
  }
  // The numbers (and a reply's or an edit's text) as in a chat message.
  const fields = chatFields({ ...obj, text: kind === 'reply' || kind === 'edit' ? text : '-' });
  /** @type {EntryRef | undefined} */
  let re;
  const value = obj.re;
  if (value !== undefined && value !== null) {
    if (!isObject(value) || typeof value.author !== 'string' || typeof value.seq !== 'number') throw bad(RE_RULE);
    re = { author: value.author, seq: value.seq + 0 };
  }
  if (TARGET_KINDS.has(kind)) {
    if (!re) throw bad('field `re` is missing');
    if (!ID_ALPHABET.test(re.author) || re.author.length > MAX_ID_LEN) throw bad(RE_RULE);
    if (!Number.isSafeInteger(re.seq) || re.seq < 1) throw bad(RE_RULE);
  } else if (re) {
    throw bad('field `re` is only for entries about another one');
  }
  if (kind === 'react' || kind === 'unreact') {
    if (isBlank(text) || utf8Length(text) > MAX_REACTION_BYTES || CONTROL.test(text)) {
      throw bad('field `text` must be a reaction: 1 to 32 bytes, not only white space, no control characters');
    }
  }
  if (kind === 'room_name' && (utf8Length(text) > MAX_ROOM_NAME_BYTES || CONTROL.test(text))) {
    throw bad('field `text` must be a room name: at most 256 bytes, no control characters');
  }
  /** @type {Chat} */
  const out = { id: fields.id, seq: fields.seq, clock: fields.clock, ts: fields.ts, text, entry: kind };
  if (re) out.re = re;
  if (fields.sig !== undefined) out.sig = fields.sig;
  return out;
}

/**
 * The fields of a log entry whose envelope `type` (or record `kind`) is
 * `type`: a chat message, a file offer, or another kind.
 * @param {Record<string, unknown>} obj
 * @param {string} type
 * @returns {Chat}
 */
function anyEntryFields(obj, type) {
  if (isEntryKind(type)) return entryFields(obj, type);
  return chatFields(obj, type === 'file');
}

/**
 * A field that may be left out (or `null`), but is a string if given.
 * @param {Record<string, unknown>} obj
 * @param {string} field
 * @returns {string | undefined}
 */
function optionalString(obj, field) {
  const value = obj[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ProtocolError('bad_message', `field \`${field}\` must be a string`);
  return value;
}

/**
 * @param {unknown} value
 * @returns {HistoryRecord}
 */
function historyRecord(value) {
  if (!isObject(value)) throw new ProtocolError('bad_message', 'each history message must be an object');
  const author = checkId(value.author, 'author');
  const nick = str(value, 'nick');
  try {
    validateNick(nick);
  } catch {
    throw new ProtocolError('bad_message', 'field `nick` must follow the nickname rules');
  }
  const kind = value.kind;
  if (kind !== undefined && kind !== null && kind !== 'chat' && kind !== 'file' && !isEntryKind(kind)) {
    throw new ProtocolError('bad_message', 'field `kind` names a kind of entry this client does not know');
  }
  const { entry, ...fields } = anyEntryFields(value, typeof kind === 'string' ? kind : 'chat');
  /** @type {HistoryRecord} */
  const record = { author, nick, ...fields };
  if (entry) {
    // In the protocol's order: the kind and target before the key.
    const { re, sig } = record;
    delete record.re;
    delete record.sig;
    record.kind = entry;
    if (re) record.re = re;
    if (sig !== undefined) record.sig = sig;
  }
  const alg = optionalString(value, 'alg');
  const key = optionalString(value, 'key');
  if (alg !== undefined) record.alg = alg;
  if (key !== undefined) record.key = key;
  if (record.sig !== undefined) {
    // In the protocol's order: the key, then the signature.
    const { sig } = record;
    delete record.sig;
    record.sig = sig;
  }
  return record;
}

/**
 * The number of a log entry of a kind this client does not know: an
 * envelope with a valid `id`, `seq`, `clock` and `ts`; else undefined.
 * @param {Record<string, unknown>} obj
 */
function unknownEntry(obj) {
  const fields = attempt(() => {
    checkId(obj.id, 'id');
    counter(obj, 'clock', 1);
    const ts = obj.ts;
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0 || ts > MAX_TS) return null;
    return counter(obj, 'seq', 1);
  });
  return fields ?? undefined;
}

/**
 * Reads a data-channel envelope's object and checks `v`; returns it with its
 * `type`. What JSON means here: a number is worth its value (`1`, `1.0` and
 * `1e0` are the same integer), a string is Unicode text (an escaped lone
 * surrogate reads as U+FFFD), a member name given twice counts with its last
 * value.
 * @param {string} text
 */
function envelopeObject(text) {
  const obj = parseObject(text, true);
  if (obj.v === undefined) throw new ProtocolError('bad_message', 'field `v` is missing');
  if (!Number.isSafeInteger(obj.v) || /** @type {number} */ (obj.v) < 1) {
    throw new ProtocolError('bad_message', 'field `v` must be 1 or more');
  }
  return { obj, type: str(obj, 'type') };
}

/**
 * @param {Record<string, unknown>} obj
 * @returns {unknown[]}
 */
function historyMessages(obj) {
  const messages = obj.messages;
  if (!Array.isArray(messages)) throw new ProtocolError('bad_message', 'field `messages` must be an array');
  if (messages.length > MAX_HISTORY_BATCH) {
    throw new ProtocolError('bad_message', 'field `messages` must hold at most 1000 messages');
  }
  return messages;
}

/**
 * Parses and validates a data-channel envelope.
 * @param {string} text
 * @returns {PeerMessage}
 */
export function parsePeerMessage(text) {
  const { obj, type } = envelopeObject(text);
  switch (type) {
    case 'chat':
      return { kind: 'chat', ...chatFields(obj) };
    case 'file':
      return { kind: 'chat', ...chatFields(obj, true) };
    case 'reply':
    case 'edit':
    case 'delete':
    case 'react':
    case 'unreact':
    case 'room_name':
      return { kind: 'chat', ...entryFields(obj, type) };
    case 'private': {
      if (!('body' in obj)) throw new ProtocolError('bad_message', 'field `body` is missing');
      if (!isObject(obj.body)) throw new ProtocolError('bad_message', 'field `body` must be an object');
      return { kind: 'private', body: JSON.stringify(obj.body) };
    }
    case 'ack':
      return { kind: 'ack', upto: counter(obj, 'upto', 0) };
    case 'sync': {
      const have = obj.have;
      if (!isObject(have)) throw new ProtocolError('bad_message', 'field `have` must be an object');
      const authors = Object.keys(have);
      if (authors.length > MAX_SYNC_AUTHORS) {
        throw new ProtocolError('bad_message', 'field `have` must name at most 1024 authors');
      }
      /** @type {Record<string, number>} */
      const out = {};
      for (const author of authors) {
        checkId(author, 'author');
        out[author] = counter(have, author, 0);
      }
      return { kind: 'sync', have: out };
    }
    case 'history':
      return { kind: 'history', messages: historyMessages(obj).map(historyRecord) };
    case 'typing':
      return { kind: 'typing' };
    default: {
      const seq = unknownEntry(obj);
      return seq === undefined ? { kind: 'unknown', type } : { kind: 'unknown', type, seq };
    }
  }
}

/**
 * A message that breaks a rule but names its author and number: not shown,
 * yet received (acknowledged, never asked for again), so that it cannot hold
 * the author's later messages back.
 * @typedef {{flawed: true, author: string, seq: number}} Flawed
 * @typedef {{kind: 'chat', seq: number} | {kind: 'history', entries: (HistoryRecord | Flawed)[]}} Salvaged
 */

/**
 * @template T
 * @param {() => T} read
 * @returns {T | null} what `read` returns, or null if it throws
 */
function attempt(read) {
  try {
    return read();
  } catch {
    return null;
  }
}

/**
 * What can still be read of a `chat` or `history` envelope that
 * {@link parsePeerMessage} refuses: a `chat`'s number, or a `history`'s
 * messages in order, the valid ones and the flawed ones (messages that name
 * no valid author and number are left out). Null for other envelopes, a
 * `chat` without a valid `seq`, or an envelope whose outer shape is wrong.
 * @param {string} text
 * @returns {Salvaged | null}
 */
export function salvagePeerMessage(text) {
  const envelope = attempt(() => envelopeObject(text));
  if (envelope?.type === 'chat' || envelope?.type === 'file' || isEntryKind(envelope?.type)) {
    if (attempt(() => anyEntryFields(envelope.obj, envelope.type))) return null;
    const seq = attempt(() => counter(envelope.obj, 'seq', 1));
    return seq === null ? null : { kind: 'chat', seq };
  }
  if (envelope?.type !== 'history') return null;
  const messages = attempt(() => historyMessages(envelope.obj));
  if (messages === null) return null;
  /** @type {(HistoryRecord | Flawed)[]} */
  const entries = [];
  for (const item of messages) {
    const record = attempt(() => historyRecord(item));
    if (record) {
      entries.push(record);
    } else if (isObject(item)) {
      const author = attempt(() => checkId(item.author, 'author'));
      const seq = attempt(() => counter(item, 'seq', 1));
      if (author !== null && seq !== null) entries.push({ flawed: true, author, seq });
    }
  }
  return { kind: 'history', entries };
}
