// @ts-check
/**
 * File transfers, sans I/O (protocol version 2, "Files" in
 * docs/protocol.md): the fetching side of a file ({@link Receiver}), the
 * holder's side of one transfer channel ({@link Sender}), the messages of a
 * transfer channel, SHA-256 per piece and of the whole file as bytes go by,
 * the image types recognised by content, and the plain names a receiver
 * shows and saves. No I/O and no clock: inputs and the time go in, actions
 * come out, timers are `nextDeadline()` / `handleTimeout(now)`.
 *
 * This mirrors the Rust crate `peerchat-transfer`; both replay the scenarios
 * in `tests/vectors/transfer.json`. SHA-256 comes from the vendored
 * `@noble/hashes` (WebCrypto's digest is not incremental, and a machine
 * that hashes as bytes arrive must do so synchronously). The page hashes
 * natively instead, with the same outcome: a {@link Receiver} configured
 * with `nativeDigests` takes each piece's digest from its caller (WebCrypto)
 * and asks it to hash the whole file in order (`whole`, `whole_digest`,
 * {@link Receiver.wholeDigest}; the page's worker does), and
 * {@link Sender.read} takes a whole piece's digest; the JS replay of the
 * vectors runs both ways.
 * @module
 */

import { sha256 as nobleSha256 } from '../vendor/noble-hashes/sha2.js';
import { DEFAULT_IGNORABLE, MAX_PIECE, MAX_PIECES } from './protocol.js';

/**
 * @typedef {import('./protocol.js').FileMeta} FileMeta
 * @typedef {ReturnType<typeof nobleSha256.create>} Sha256
 */

// ---------------------------------------------------------------- hashing

/** The piece size peerchat chooses starts here (256 KiB). */
export const BASE_PIECE = 2 ** 18;
/** peerchat cuts a file into at most this many pieces below 16 MiB pieces. */
export const TARGET_PIECES = 4096;

/**
 * Lowercase hex of `bytes`.
 * @param {Uint8Array} bytes
 */
export function hex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * Bytes from lowercase hex (64 digits); null if it is not.
 * @param {string} text
 */
export function fromHex(text) {
  if (!/^[0-9a-f]{64}$/.test(text)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The SHA-256 of `bytes`.
 * @param {Uint8Array} bytes
 */
export function sha256(bytes) {
  return nobleSha256(bytes);
}

/**
 * The commitment to a hash list: the SHA-256 of the hashes concatenated.
 * @param {Uint8Array[]} hashes
 */
export function rootOf(hashes) {
  const h = nobleSha256.create();
  for (const hash of hashes) h.update(hash);
  return h.digest();
}

/**
 * The piece size peerchat writes for a file of `size` bytes: the smallest
 * power of two from 256 KiB that cuts it into at most 4,096 pieces, at most
 * 16 MiB; null for a file too large to offer (over 1 TiB).
 * @param {number} size
 */
export function pieceSizeFor(size) {
  let piece = BASE_PIECE;
  while (piece < MAX_PIECE && Math.ceil(size / piece) > TARGET_PIECES) piece *= 2;
  return Math.ceil(size / piece) <= MAX_PIECES ? piece : null;
}

/**
 * @typedef {{size: number, piece: number, sha256: Uint8Array, pieces: Uint8Array[], root: Uint8Array}} Digests
 */

/** Hashes a file fed in order, in slices of any size. */
export class FileHasher {
  /** @param {number} piece */
  constructor(piece) {
    this.piece = Math.max(1, piece);
    this.whole = nobleSha256.create();
    this.current = nobleSha256.create();
    this.inPiece = 0;
    this.size = 0;
    /** @type {Uint8Array[]} */
    this.pieces = [];
  }

  /** @param {Uint8Array} bytes the next bytes of the file */
  update(bytes) {
    this.whole.update(bytes);
    this.size += bytes.length;
    let at = 0;
    while (at < bytes.length) {
      const take = Math.min(this.piece - this.inPiece, bytes.length - at);
      this.current.update(bytes.subarray(at, at + take));
      this.inPiece += take;
      at += take;
      if (this.inPiece === this.piece) {
        this.pieces.push(this.current.digest());
        this.current = nobleSha256.create();
        this.inPiece = 0;
      }
    }
  }

  /** @returns {Digests} */
  finish() {
    if (this.inPiece > 0) this.pieces.push(this.current.digest());
    return {
      size: this.size,
      piece: this.piece,
      sha256: this.whole.digest(),
      pieces: this.pieces,
      root: rootOf(this.pieces),
    };
  }
}

/**
 * Hashes a Blob (a `File`) piece by piece with `File.slice`, never holding
 * more than one piece: its digests and its offer's media type.
 * @param {Blob} blob
 * @param {(done: number) => void} [progress] called after each piece
 */
export async function digestBlob(blob, progress) {
  const piece = pieceSizeFor(blob.size);
  if (piece === null) throw new RangeError('files over 1 TiB cannot be offered');
  const hasher = new FileHasher(piece);
  let type = OCTET_STREAM;
  for (let at = 0; at < blob.size; at += piece) {
    const bytes = new Uint8Array(await blob.slice(at, at + piece).arrayBuffer());
    if (at === 0) type = mediaType(bytes);
    hasher.update(bytes);
    progress?.(Math.min(blob.size, at + piece));
  }
  return { digests: hasher.finish(), type };
}

/**
 * An offer of a file with these digests.
 * @param {Digests} digests
 * @param {{fid: string, name: string, type: string}} fields
 * @returns {FileMeta}
 */
export function offerOf(digests, { fid, name, type }) {
  return {
    fid,
    name,
    size: digests.size,
    type,
    piece: digests.piece,
    sha256: hex(digests.sha256),
    root: hex(digests.root),
  };
}

// ---------------------------------------------------------------- sniffing

/** The media type of anything that is not a recognised image. */
export const OCTET_STREAM = 'application/octet-stream';
/** How many bytes from the start of a file {@link sniff} needs at most. */
export const SNIFF_BYTES = 12;

/**
 * @param {Uint8Array} bytes
 * @param {number[]} magic
 * @param {number} [at]
 */
function startsWith(bytes, magic, at = 0) {
  return bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);
}

/**
 * The image type `prefix` starts as (PNG, JPEG, GIF, WebP), or null.
 * @param {Uint8Array} prefix
 * @returns {string | null}
 */
export function sniff(prefix) {
  if (startsWith(prefix, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(prefix, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(prefix, [0x47, 0x49, 0x46, 0x38, 0x37, 0x61]) || startsWith(prefix, [0x47, 0x49, 0x46, 0x38, 0x39, 0x61])) {
    return 'image/gif';
  }
  if (startsWith(prefix, [0x52, 0x49, 0x46, 0x46]) && startsWith(prefix, [0x57, 0x45, 0x42, 0x50], 8)) return 'image/webp';
  return null;
}

/**
 * The media type peerchat writes in an offer of a file starting with
 * `prefix`.
 * @param {Uint8Array} prefix
 */
export function mediaType(prefix) {
  return sniff(prefix) ?? OCTET_STREAM;
}

/**
 * Whether a received file may be shown as an image: its offer names one of
 * the image types, and its first bytes are that type's.
 * @param {string} offered
 * @param {Uint8Array} prefix
 */
export function showsAsImage(offered, prefix) {
  return sniff(prefix) === offered;
}

// ---------------------------------------------------------------- names

/** Longest plain name, in bytes of UTF-8. */
export const MAX_NAME_BYTES = 255;
/** The name of a file whose name has nothing left. */
export const FALLBACK_NAME = 'file';
const encoder = new TextEncoder();
/** @param {string} text */
const utf8 = (text) => encoder.encode(text).length;
const DEVICES = /^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])$/;

/**
 * The plain form of an offered name (docs/protocol.md, "File names").
 * @param {string} name
 */
export function sanitize(name) {
  const wellFormed = name.replace(/\p{Cs}/gu, '\uFFFD');
  const base = wellFormed.slice(Math.max(wellFormed.lastIndexOf('/'), wellFormed.lastIndexOf('\\')) + 1);
  let plain = '';
  let space = false;
  for (const c of base) {
    if (/\p{White_Space}/u.test(c)) {
      space = true;
      continue;
    }
    if (/\p{Cc}/u.test(c) || DEFAULT_IGNORABLE.test(c)) continue;
    if (space) {
      plain += ' ';
      space = false;
    }
    plain += '<>:"|?*'.includes(c) ? '_' : c;
  }
  plain = plain.replace(/^[ .]+|[ .]+$/g, '');
  if (plain === '') plain = FALLBACK_NAME;
  const device = plain.split('.')[0].replace(/ +$/, '').replace(/[a-z]/g, (c) => c.toUpperCase());
  if (DEVICES.test(device)) plain = `_${plain}`;
  return fit(plain, '');
}

/**
 * The `n`-th name to try when the ones before are taken: `name` for 0,
 * then `NAME (1).EXT`, `NAME (2).EXT`, … within 255 bytes.
 * @param {string} name a plain name
 * @param {number} n
 */
export function numbered(name, n) {
  return fit(name, n === 0 ? '' : ` (${n})`);
}

/**
 * Where the extension of a plain name starts (its last dot, leaving 2 to 16
 * bytes without a space, with something before it), or -1.
 * @param {string} name
 */
export function extensionStart(name) {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return -1;
  const ext = name.slice(dot);
  const size = utf8(ext);
  return size >= 2 && size <= 16 && !ext.includes(' ') ? dot : -1;
}

/**
 * @param {string} name
 * @param {string} tag
 */
function fit(name, tag) {
  const dot = extensionStart(name);
  const stem = dot < 0 ? name : name.slice(0, dot);
  const ext = dot < 0 ? '' : name.slice(dot);
  if (utf8(stem) + utf8(tag) + utf8(ext) <= MAX_NAME_BYTES) return `${stem}${tag}${ext}`;
  const budget = MAX_NAME_BYTES - utf8(tag) - utf8(ext);
  let cut = '';
  let size = 0;
  for (const c of stem) {
    const n = utf8(c);
    if (size + n > budget) break;
    cut += c;
    size += n;
  }
  cut = cut.replace(/[ .]+$/, '');
  return `${cut === '' ? FALLBACK_NAME : cut}${tag}${ext}`;
}

// ---------------------------------------------------------------- wire

/** The label of a transfer channel. */
export const LABEL = 'file';
/** The version written in control messages. */
export const WIRE_VERSION = 2;
/**
 * Bytes of a piece in one data message, unless both sides agreed on more
 * (`get` and `have` with `chunk`); also the most of a hash-list message.
 */
export const CHUNK = 16 * 1024;
/**
 * Most bytes of a piece in one data message that peerchat asks for and
 * sends (with its header, within the 65,536 bytes every stack here takes).
 */
export const MAX_CHUNK = 32 * 1024;
/** Bytes of a data message's header. */
export const HEADER = 9;
/** Most hashes in one hash-list message. */
export const HASHES_PER_MESSAGE = CHUNK / 32;
/** Most pieces one `want` may name. */
export const MAX_WANT = 256;
const PIECE_DATA = 1;
const LIST_DATA = 2;
const REASONS = ['unavailable', 'busy', 'cancelled', 'changed', 'idle', 'protocol'];

/**
 * @typedef {{type: 'get', fid: string, sha256: string, list: boolean, chunk?: number}
 *   | {type: 'have', pieces: number, chunk?: number}
 *   | {type: 'want', pieces: number[]}
 *   | {type: 'cancel', reason: string}
 *   | {type: 'unknown'}} Control
 * @typedef {{kind: 'piece', index: number, offset: number, bytes: Uint8Array}
 *   | {kind: 'list', first: number, hashes: Uint8Array}} Data
 */

/** A message on a transfer channel that cannot be read. */
export class WireError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'WireError';
  }
}

/** @param {unknown} v */
const isCount = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Reads a control message. Throws a {@link WireError}.
 * @param {string} text
 * @returns {Control}
 */
export function parseControl(text) {
  let obj;
  try {
    obj = JSON.parse(text);
  } catch {
    throw new WireError('not a JSON object');
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new WireError('not a JSON object');
  if (!isCount(obj.v) || obj.v < 1) throw new WireError('`v` must be 1 or more');
  if (typeof obj.type !== 'string') throw new WireError('`type` must be a string');
  switch (obj.type) {
    case 'get': {
      if (typeof obj.fid !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(obj.fid)) throw new WireError('field `fid`');
      if (typeof obj.sha256 !== 'string' || fromHex(obj.sha256) === null) throw new WireError('field `sha256`');
      const list = obj.list ?? false;
      if (typeof list !== 'boolean') throw new WireError('field `list`');
      const get = { type: /** @type {const} */ ('get'), fid: obj.fid, sha256: obj.sha256, list };
      const chunk = obj.chunk ?? undefined;
      if (chunk === undefined) return get;
      if (!isCount(chunk) || chunk < CHUNK) throw new WireError('field `chunk`');
      return { ...get, chunk: chunk + 0 };
    }
    case 'have': {
      if (!isCount(obj.pieces)) throw new WireError('field `pieces`');
      const have = { type: /** @type {const} */ ('have'), pieces: obj.pieces + 0 };
      const chunk = obj.chunk ?? undefined;
      if (chunk === undefined) return have;
      if (chunk !== CHUNK && chunk !== MAX_CHUNK) throw new WireError('field `chunk`');
      return { ...have, chunk: chunk + 0 };
    }
    case 'want':
      if (!Array.isArray(obj.pieces) || obj.pieces.length === 0 || obj.pieces.length > MAX_WANT || !obj.pieces.every(isCount)) {
        throw new WireError('field `pieces`');
      }
      return { type: 'want', pieces: obj.pieces.map((/** @type {number} */ p) => p + 0) };
    case 'cancel':
      return { type: 'cancel', reason: REASONS.includes(obj.reason) ? obj.reason : 'unavailable' };
    default:
      return { type: 'unknown' };
  }
}

/**
 * A control message as JSON text.
 * @param {Control} control
 */
export function controlJson(control) {
  switch (control.type) {
    case 'get':
      return JSON.stringify({ v: WIRE_VERSION, type: 'get', fid: control.fid, sha256: control.sha256, list: control.list, chunk: control.chunk });
    case 'have':
      return JSON.stringify({ v: WIRE_VERSION, type: 'have', pieces: control.pieces, chunk: control.chunk });
    case 'want':
      return JSON.stringify({ v: WIRE_VERSION, type: 'want', pieces: control.pieces });
    case 'cancel':
      return JSON.stringify({ v: WIRE_VERSION, type: 'cancel', reason: control.reason });
    default:
      return JSON.stringify({ v: WIRE_VERSION, type: 'unknown' });
  }
}

/**
 * Reads a data message. Throws a {@link WireError}.
 * @param {Uint8Array} message
 * @returns {Data}
 */
export function parseData(message) {
  if (message.length <= HEADER || message.length > HEADER + MAX_CHUNK) throw new WireError('bad length');
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const a = view.getUint32(1);
  const b = view.getUint32(5);
  const payload = message.subarray(HEADER);
  if (message[0] === PIECE_DATA) return { kind: 'piece', index: a, offset: b, bytes: payload };
  if (message[0] === LIST_DATA) {
    if (b !== 0 || payload.length % 32 !== 0 || payload.length > CHUNK) throw new WireError('bad hash list');
    return { kind: 'list', first: a, hashes: payload };
  }
  throw new WireError(`unknown data message kind ${message[0]}`);
}

/**
 * A data message's bytes.
 * @param {Data} data
 */
export function encodeData(data) {
  const payload = data.kind === 'piece' ? data.bytes : data.hashes;
  const out = new Uint8Array(HEADER + payload.length);
  const view = new DataView(out.buffer);
  out[0] = data.kind === 'piece' ? PIECE_DATA : LIST_DATA;
  view.setUint32(1, data.kind === 'piece' ? data.index : data.first);
  view.setUint32(5, data.kind === 'piece' ? data.offset : 0);
  out.set(payload, HEADER);
  return out;
}

/**
 * The length of piece `index` of a file.
 * @param {FileMeta} meta
 * @param {number} index
 */
export function pieceLen(meta, index) {
  return Math.max(0, Math.min(meta.piece, meta.size - index * meta.piece));
}

/** @param {Uint8Array} a @param {Uint8Array | undefined} b */
function same(a, b) {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------- sender

/** A holder serves at most this many transfers to one member at once. */
export const MAX_SERVING_PER_PEER = 4;
/** A holder serves at most this many transfers at once. */
export const MAX_SERVING = 16;

/**
 * @typedef {{highWater: number, lowWater: number, readBytes: number, maxQueue: number, idleMs: number}} SenderConfig
 * @typedef {'serving' | 'done' | 'interrupted' | {cancelled: 'us' | 'peer'} | {failed: 'changed' | 'protocol' | 'idle'}} SenderState
 * @typedef {{send_text: string}
 *   | {send_binary: Uint8Array}
 *   | {read: {offset: number, len: number}}
 *   | {close: {}}
 *   | {state: SenderState}} SenderAction
 */

/** @type {SenderConfig} */
export const SENDER_DEFAULTS = {
  highWater: 2 ** 20,
  lowWater: 2 ** 18,
  readBytes: 2 ** 18,
  maxQueue: 256,
  idleMs: 120_000,
};

/** The holder's side of one transfer channel. */
export class Sender {
  /**
   * Serves `meta`, whose pieces' hashes are `list`, on a channel whose
   * `get` asked for it (`sendList`: whether it asked for the list;
   * `askedChunk`: its `chunk`); returns it with the actions that answer the
   * `get`.
   * @param {FileMeta} meta
   * @param {Uint8Array[]} list
   * @param {boolean} sendList
   * @param {number | undefined} askedChunk
   * @param {Partial<SenderConfig>} config
   * @param {number} now
   */
  static create(meta, list, sendList, askedChunk, config, now) {
    const chunk = askedChunk !== undefined && askedChunk >= MAX_CHUNK ? MAX_CHUNK : CHUNK;
    const sender = new Sender(meta, list, sendList, chunk, config, now);
    const have = { type: /** @type {const} */ ('have'), pieces: Math.ceil(meta.size / meta.piece) };
    /** @type {SenderAction[]} */
    const out = [{ send_text: controlJson(askedChunk === undefined ? have : { ...have, chunk }) }];
    sender.pump(out);
    return { sender, actions: out };
  }

  /**
   * @private
   * @param {FileMeta} meta
   * @param {Uint8Array[]} list
   * @param {boolean} sendList
   * @param {number} chunk bytes of a piece in each data message
   * @param {Partial<SenderConfig>} config
   * @param {number} now
   */
  constructor(meta, list, sendList, chunk, config, now) {
    this.meta = meta;
    this.list = list;
    this.chunk = chunk;
    const merged = { ...SENDER_DEFAULTS, ...config };
    /** @type {SenderConfig} */
    this.config = { ...merged, readBytes: Math.max(1, Math.ceil(merged.readBytes / chunk)) * chunk };
    /** @type {SenderState} */
    this.state = 'serving';
    /** @type {number | null} the next hash to send, while the list is sent */
    this.listNext = sendList ? 0 : null;
    /** @type {number[]} pieces asked for, not yet being read */
    this.queue = [];
    /** @type {{piece: number, next: number, hasher: Sha256} | null} */
    this.reading = null;
    /** @type {{offset: number, len: number} | null} the read asked for */
    this.pending = null;
    /** @type {{piece: number, offset: number, bytes: Uint8Array, pos: number}[]} */
    this.buffers = [];
    this.inFlight = 0;
    /** Bytes of pieces handed to the channel. */
    this.sent = 0;
    this.active = now;
  }

  /** Bytes of pieces that have left the channel's buffer. */
  delivered() {
    return Math.max(0, this.sent - this.inFlight);
  }

  /** The `bufferedAmountLowThreshold` to set on the channel. */
  lowWater() {
    return this.config.lowWater;
  }

  /** @private */
  over() {
    return this.state !== 'serving';
  }

  /**
   * A control message arrived.
   * @param {string} text
   * @param {number} now
   * @returns {SenderAction[]}
   */
  text(text, now) {
    /** @type {SenderAction[]} */
    const out = [];
    if (this.over()) return out;
    this.active = now;
    let control;
    try {
      control = parseControl(text);
    } catch {
      this.fail('protocol', out);
      return out;
    }
    const count = Math.ceil(this.meta.size / this.meta.piece);
    if (control.type === 'want') {
      if (control.pieces.some((p) => p >= count) || this.queue.length + control.pieces.length > this.config.maxQueue) {
        this.fail('protocol', out);
        return out;
      }
      this.queue.push(...control.pieces);
      this.pump(out);
    } else if (control.type === 'cancel') {
      this.stop({ cancelled: 'peer' }, out);
      out.push({ close: {} });
    } else if (control.type !== 'unknown') {
      this.fail('protocol', out);
    }
    return out;
  }

  /**
   * The read asked for returned `bytes` (of the file at `offset`). A caller
   * that hashes natively (the page, with WebCrypto) passes `digest`, the
   * SHA-256 of `bytes`: when `bytes` is a whole piece it is checked against
   * the list with that instead of hashing here, the same check.
   * @param {number} offset
   * @param {Uint8Array} bytes
   * @param {number} now
   * @param {Uint8Array} [digest]
   * @returns {SenderAction[]}
   */
  read(offset, bytes, now, digest) {
    /** @type {SenderAction[]} */
    const out = [];
    const pending = this.pending;
    if (this.over() || pending === null || pending.offset !== offset || pending.len !== bytes.length) {
      // A short read is a file that was cut since it was offered.
      if (!this.over() && pending !== null && pending.offset === offset) this.fail('changed', out);
      return out;
    }
    this.pending = null;
    this.active = now;
    const reading = this.reading;
    if (!reading) return out;
    const start = reading.next - bytes.length;
    const whole = start === 0 && digest !== undefined && reading.next === pieceLen(this.meta, reading.piece);
    if (!whole) reading.hasher.update(bytes);
    if (reading.next === pieceLen(this.meta, reading.piece)) {
      this.reading = null;
      if (!same(whole ? /** @type {Uint8Array} */ (digest) : reading.hasher.digest(), this.list[reading.piece])) {
        this.fail('changed', out);
        return out;
      }
    }
    this.buffers.push({ piece: reading.piece, offset: start, bytes, pos: 0 });
    this.pump(out);
    return out;
  }

  /**
   * The channel holds `amount` bytes not yet sent.
   * @param {number} amount
   * @param {number} _now
   * @returns {SenderAction[]}
   */
  buffered(amount, _now) {
    /** @type {SenderAction[]} */
    const out = [];
    this.inFlight = amount;
    if (!this.over()) this.pump(out);
    return out;
  }

  /**
   * This side's user cancels.
   * @param {number} _now
   * @returns {SenderAction[]}
   */
  cancel(_now) {
    /** @type {SenderAction[]} */
    const out = [];
    if (!this.over()) {
      out.push({ send_text: controlJson({ type: 'cancel', reason: 'cancelled' }) }, { close: {} });
      this.stop({ cancelled: 'us' }, out);
    }
    return out;
  }

  /**
   * The channel closed.
   * @param {number} _now
   * @returns {SenderAction[]}
   */
  closed(_now) {
    /** @type {SenderAction[]} */
    const out = [];
    if (!this.over()) this.stop(this.idle() ? 'done' : 'interrupted', out);
    return out;
  }

  /** @returns {number | null} */
  nextDeadline() {
    return !this.over() && this.idle() ? this.active + this.config.idleMs : null;
  }

  /**
   * @param {number} now
   * @returns {SenderAction[]}
   */
  handleTimeout(now) {
    /** @type {SenderAction[]} */
    const out = [];
    const deadline = this.nextDeadline();
    if (deadline !== null && now >= deadline) this.fail('idle', out);
    return out;
  }

  /** @private */
  idle() {
    return this.listNext === null && this.queue.length === 0 && this.reading === null && this.pending === null && this.buffers.length === 0;
  }

  /**
   * @private
   * @param {'changed' | 'protocol' | 'idle'} error
   * @param {SenderAction[]} out
   */
  fail(error, out) {
    out.push({ send_text: controlJson({ type: 'cancel', reason: error }) }, { close: {} });
    this.stop({ failed: error }, out);
  }

  /**
   * @private
   * @param {SenderState} state
   * @param {SenderAction[]} out
   */
  stop(state, out) {
    this.state = state;
    this.listNext = null;
    this.queue = [];
    this.reading = null;
    this.pending = null;
    this.buffers = [];
    out.push({ state });
  }

  /**
   * Hands the channel what fits, and asks for the next read.
   * @private
   * @param {SenderAction[]} out
   */
  pump(out) {
    while (this.inFlight < this.config.highWater) {
      let message;
      if (this.listNext !== null) {
        const next = this.listNext;
        const end = Math.min(next + HASHES_PER_MESSAGE, this.list.length);
        const hashes = new Uint8Array((end - next) * 32);
        for (let i = next; i < end; i += 1) hashes.set(this.list[i], (i - next) * 32);
        this.listNext = end < this.list.length ? end : null;
        message = encodeData({ kind: 'list', first: next, hashes });
      } else if (this.buffers.length > 0) {
        const buffer = this.buffers[0];
        const end = Math.min(buffer.pos + this.chunk, buffer.bytes.length);
        const bytes = buffer.bytes.subarray(buffer.pos, end);
        message = encodeData({ kind: 'piece', index: buffer.piece, offset: buffer.offset + buffer.pos, bytes });
        this.sent += bytes.length;
        buffer.pos = end;
        if (buffer.pos === buffer.bytes.length) this.buffers.shift();
      } else {
        break;
      }
      this.inFlight += message.length;
      out.push({ send_binary: message });
    }
    // Read ahead by one buffer at most.
    if (this.pending === null && this.buffers.length < 2) {
      if (this.reading === null && this.queue.length > 0) {
        this.reading = { piece: /** @type {number} */ (this.queue.shift()), next: 0, hasher: nobleSha256.create() };
      }
      if (this.reading) {
        const len = Math.min(this.config.readBytes, pieceLen(this.meta, this.reading.piece) - this.reading.next);
        const offset = this.reading.piece * this.meta.piece + this.reading.next;
        this.reading.next += len;
        this.pending = { offset, len };
        out.push({ read: { offset, len } });
      }
    }
  }
}

/**
 * Gathers the bytes of the piece a channel is delivering, so that a caller
 * that hashes pieces itself (a {@link Receiver} with `nativeDigests`) can
 * hash each one whole: {@link PieceParts.add} returns the piece's bytes with
 * the message that completes it, else null. Holds one piece at most, in one
 * buffer kept for the next (no memory is taken per piece); a message that
 * does not follow on starts over (the machine judges it).
 */
export class PieceParts {
  /** @param {FileMeta} meta */
  constructor(meta) {
    this.meta = meta;
    this.buffer = new Uint8Array(0);
    this.index = -1;
    this.next = 0;
  }

  /**
   * The piece's bytes when `message` completes it: the message's own bytes
   * when the piece is that one message, else a view of this gatherer's
   * buffer, valid until the next call (hash or copy it before: WebCrypto's
   * `digest` copies its input when called).
   * @param {Uint8Array} message
   * @returns {Uint8Array | null}
   */
  add(message) {
    let data;
    try {
      data = parseData(message);
    } catch {
      return null;
    }
    if (data.kind !== 'piece') return null;
    if (data.index !== this.index || data.offset !== this.next) {
      this.index = -1;
      this.next = 0;
      if (data.offset !== 0) return null;
      this.index = data.index;
    }
    const len = this.meta.size > 0 && data.index < Math.ceil(this.meta.size / this.meta.piece) ? pieceLen(this.meta, data.index) : -1;
    const end = this.next + data.bytes.length;
    if (len < 0 || end > len) {
      this.index = -1;
      this.next = 0;
      return null;
    }
    if (end === len && this.next === 0) {
      this.index = -1;
      return data.bytes;
    }
    if (this.buffer.length < len) this.buffer = new Uint8Array(len);
    this.buffer.set(data.bytes, this.next);
    this.next = end;
    if (end < len) return null;
    this.index = -1;
    this.next = 0;
    return this.buffer.subarray(0, len);
  }
}

// ---------------------------------------------------------------- receiver

/**
 * @typedef {{autoAccept: number, window: number, maxSources: number, stallMs: number, openTimeoutMs: number,
 *   unavailableMs: number, backoffMinMs: number, backoffMaxMs: number, maxBadPieces: number, readBytes: number,
 *   nativeDigests: boolean}} ReceiverConfig
 * @typedef {'waiting' | 'fetching' | {stalled: {since: number}} | 'checking' | 'complete'
 *   | {failed: 'hash_mismatch'} | {cancelled: 'us' | 'author'}} ReceiverState
 * @typedef {{open: string}
 *   | {send: {to: string, text: string}}
 *   | {close: string}
 *   | {write: {offset: number, data: Uint8Array}}
 *   | {read: {offset: number, len: number}}
 *   | {verified: number}
 *   | {corrupt: {piece: number, from: string | null}}
 *   | {source_failed: {peer: string, error: string}}
 *   | {whole: {offset: number, len: number}}
 *   | {whole_digest: {}}
 *   | {state: ReceiverState}} ReceiverAction
 *   (`write.data` is a view of the message given to {@link Receiver.binary},
 *   not a copy: the caller writes or copies it before it reuses that memory)
 * @typedef {{accepted: boolean, have: [number, number][]}} Saved
 */

/** @type {ReceiverConfig} */
export const RECEIVER_DEFAULTS = {
  autoAccept: 10 * 2 ** 20,
  window: 4 * 2 ** 20,
  maxSources: 1,
  stallMs: 10_000,
  openTimeoutMs: 15_000,
  unavailableMs: 60_000,
  backoffMinMs: 1_000,
  backoffMaxMs: 30_000,
  maxBadPieces: 3,
  readBytes: 2 ** 18,
  nativeDigests: false,
};

/**
 * Whether a transfer is fetched without asking its user: accepted before
 * (`saved`), or no larger than `autoAccept` (0: never by itself).
 * @param {FileMeta} meta
 * @param {number} autoAccept
 * @param {Saved} [saved]
 */
export function startsAccepted(meta, autoAccept, saved) {
  return (saved?.accepted ?? false) || (autoAccept > 0 && meta.size <= autoAccept);
}

/**
 * Whether a transfer has ended: complete, failed or cancelled.
 * @param {ReceiverState} state
 */
export function isOver(state) {
  return state === 'complete' || (typeof state === 'object' && ('failed' in state || 'cancelled' in state));
}

/** @param {ReceiverState} a @param {ReceiverState} b */
function sameState(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * @typedef {{phase: 'opening' | 'getting' | 'listing' | 'ready', list: number[], asked: number[], received: number,
 *   hasher: Sha256, outstanding: number, chunk: number, last: number}} Source
 * @typedef {{up: boolean, retryAt: number, failures: number, badPieces: number, banned: boolean}} Holder
 */

/** The fetching side of one file. */
export class Receiver {
  /**
   * A transfer of `meta` offered by `author`: fetched at once if small
   * enough, else waiting for {@link Receiver.accept}. Nothing happens
   * before {@link Receiver.start}.
   * @param {FileMeta} meta
   * @param {string} author
   * @param {Partial<ReceiverConfig>} [config]
   * @param {Saved} [saved] what was saved of it, to resume
   */
  constructor(meta, author, config = {}, saved = { accepted: false, have: [] }) {
    const merged = { ...RECEIVER_DEFAULTS, ...config };
    /** @type {ReceiverConfig} */
    this.config = { ...merged, maxSources: Math.max(1, merged.maxSources), readBytes: Math.max(1, merged.readBytes) };
    this.meta = meta;
    this.author = author;
    this.count = Math.ceil(meta.size / meta.piece);
    /** @type {boolean[]} */
    this.have = new Array(this.count).fill(false);
    for (const [start, end] of saved.have) for (let i = start; i < Math.min(end, this.count); i += 1) this.have[i] = true;
    /** How many pieces it does not hold (kept as `have` changes: scanning it per message cost a large file dearly). */
    this.missing = this.have.filter((h) => !h).length;
    this.accepted = startsAccepted(meta, this.config.autoAccept, saved);
    /** @type {ReceiverState} */
    this.state = this.accepted ? 'fetching' : 'waiting';
    /** @type {Uint8Array[] | null} */
    this.list = this.count === 0 ? [] : null;
    /** @type {boolean[]} */
    this.asked = new Array(this.count).fill(false);
    /** @type {Map<string, Holder>} */
    this.holders = new Map();
    /** @type {Map<string, Source>} */
    this.sources = new Map();
    this.whole = nobleSha256.create();
    this.cursor = 0;
    /** @type {{piece: number, snapshot: Sha256 | null} | null} */
    this.speculative = null;
    /** @type {{piece: number, next: number, hasher: Sha256, snapshot: Sha256 | null} | null} */
    this.readback = null;
    this.unwritten = 0;
    /** Under `nativeDigests`, whether the whole file's SHA-256 was asked for. */
    this.finishing = false;
    this.lastProgress = 0;
    this.started = false;
    this.rootHex = meta.root;
    this.sha256Hex = meta.sha256;
  }

  /**
   * What to keep on the device.
   * @returns {Saved}
   */
  saved() {
    /** @type {[number, number][]} */
    const have = [];
    let start = -1;
    for (let i = 0; i <= this.count; i += 1) {
      const held = i < this.count && this.have[i];
      if (held && start < 0) start = i;
      if (!held && start >= 0) {
        have.push([start, i]);
        start = -1;
      }
    }
    return { accepted: this.accepted, have };
  }

  /** How far it is: bytes held (checked pieces and parts of others). */
  progress() {
    let bytes = 0;
    for (let i = 0; i < this.count; i += 1) if (this.have[i]) bytes += pieceLen(this.meta, i);
    for (const s of this.sources.values()) bytes += s.received;
    return { bytes, size: this.meta.size };
  }

  /** The members it fetches from now, sorted. */
  sourcePeers() {
    return [...this.sources.keys()].sort();
  }

  /**
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  start(now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    if (!this.started) {
      this.started = true;
      this.lastProgress = now;
      out.push({ state: this.state });
      this.settle(now, out);
    }
    return out;
  }

  /**
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  accept(now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    if (this.state === 'waiting') {
      this.accepted = true;
      this.lastProgress = now;
      this.settle(now, out);
    }
    return out;
  }

  /**
   * @param {number} _now
   * @returns {ReceiverAction[]}
   */
  cancel(_now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    if (!isOver(this.state)) {
      const text = controlJson({ type: 'cancel', reason: 'cancelled' });
      for (const peer of this.sourcePeers()) out.push({ send: { to: peer, text } }, { close: peer });
      this.sources.clear();
      this.setState({ cancelled: 'us' }, out);
    }
    return out;
  }

  /** @private @param {string} peer */
  holder(peer) {
    let h = this.holders.get(peer);
    if (!h) {
      h = { up: false, retryAt: 0, failures: 0, badPieces: 0, banned: false };
      this.holders.set(peer, h);
    }
    return h;
  }

  /**
   * `peer`'s connection is up: it may be asked.
   * @param {string} peer
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  peerUp(peer, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    this.holder(peer).up = true;
    this.settle(now, out);
    return out;
  }

  /**
   * @param {string} peer
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  peerDown(peer, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    const h = this.holders.get(peer);
    if (h) h.up = false;
    if (this.sources.has(peer)) this.failSource(peer, 'closed', 'nothing', now, out);
    this.settle(now, out);
    return out;
  }

  /**
   * The channel to `peer` asked for opened.
   * @param {string} peer
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  opened(peer, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    const source = this.sources.get(peer);
    if (source && source.phase === 'opening') {
      source.phase = 'getting';
      source.last = now;
      const text = controlJson({ type: 'get', fid: this.meta.fid, sha256: this.meta.sha256, list: this.list === null, chunk: MAX_CHUNK });
      out.push({ send: { to: peer, text } });
    }
    return out;
  }

  /**
   * The channel to `peer` closed (or could not open).
   * @param {string} peer
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  closed(peer, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    if (this.sources.has(peer)) {
      this.failSource(peer, 'closed', 'nothing', now, out);
      this.settle(now, out);
    }
    return out;
  }

  /**
   * A control message from `peer`'s channel.
   * @param {string} peer
   * @param {string} text
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  text(peer, text, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    const source = this.sources.get(peer);
    if (!source) return out;
    /** @type {Control | null} */
    let control = null;
    try {
      control = parseControl(text);
    } catch {
      control = null;
    }
    if (control?.type === 'have' && source.phase === 'getting') {
      // (The `chunk` it may name is at most the one asked for.)
      source.chunk = control.chunk ?? CHUNK;
      if (control.pieces !== this.count) {
        this.failSource(peer, 'protocol', 'cancel', now, out);
      } else {
        source.phase = this.list !== null ? 'ready' : 'listing';
        source.last = now;
        this.lastProgress = now;
      }
    } else if (control?.type === 'cancel') {
      if (control.reason === 'cancelled' && peer === this.author) {
        for (const other of this.sourcePeers()) out.push({ close: other });
        this.sources.clear();
        this.setState({ cancelled: 'author' }, out);
        return out;
      }
      this.failSource(peer, `refused:${control.reason}`, 'close', now, out);
    } else if (control?.type !== 'unknown') {
      this.failSource(peer, 'protocol', 'cancel', now, out);
    }
    this.settle(now, out);
    return out;
  }

  /**
   * A data message from `peer`'s channel. With `nativeDigests` configured,
   * the caller hashes each piece itself (the page, with WebCrypto, off the
   * script's thread; {@link PieceParts} gathers a piece's bytes) and passes
   * `digest`, the SHA-256 of the piece this message completes, with the
   * message that completes it; the piece is checked against the list with
   * it, exactly as when the machine hashes it.
   * @param {string} peer
   * @param {Uint8Array} message
   * @param {number} now
   * @param {Uint8Array} [digest]
   * @returns {ReceiverAction[]}
   */
  binary(peer, message, now, digest) {
    /** @type {ReceiverAction[]} */
    const out = [];
    if (!this.sources.has(peer)) return out;
    let ok = false;
    try {
      const data = parseData(message);
      ok = data.kind === 'list' ? this.listPart(peer, data.first, data.hashes, now) : this.piecePart(peer, data.index, data.offset, data.bytes, now, out, digest);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
    if (!ok) this.failSource(peer, 'protocol', 'cancel', now, out);
    this.settle(now, out);
    return out;
  }

  /**
   * `bytes` of earlier writes are done.
   * @param {number} bytes
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  written(bytes, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    this.unwritten = Math.max(0, this.unwritten - bytes);
    this.settle(now, out);
    return out;
  }

  /**
   * The read asked for returned `data`; fewer bytes than asked means the
   * piece is not there.
   * @param {number} offset
   * @param {Uint8Array} data
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  read(offset, data, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    const rb = this.readback;
    if (!rb) return out;
    const len = pieceLen(this.meta, rb.piece);
    const want = Math.min(this.config.readBytes, len - rb.next);
    if (offset !== rb.piece * this.meta.piece + rb.next) return out;
    let good = data.length === want;
    if (good) {
      rb.hasher.update(data);
      if (!this.config.nativeDigests) this.whole.update(data);
      rb.next += want;
      if (rb.next < len) {
        out.push({ read: { offset: offset + want, len: Math.min(this.config.readBytes, len - rb.next) } });
        return out;
      }
    }
    this.readback = null;
    if (good) good = same(rb.hasher.digest(), this.list?.[rb.piece]);
    if (good) {
      this.feedWhole(rb.piece, out);
    } else {
      if (rb.snapshot) this.whole = rb.snapshot;
      if (this.have[rb.piece]) this.missing += 1;
      this.have[rb.piece] = false;
      out.push({ corrupt: { piece: rb.piece, from: null } });
    }
    this.settle(now, out);
    return out;
  }

  /** @returns {number | null} */
  nextDeadline() {
    if (isOver(this.state) || !this.accepted || !this.started) return null;
    /** @type {number | null} */
    let next = null;
    /** @param {number} t */
    const at = (t) => {
      next = next === null ? t : Math.min(next, t);
    };
    for (const source of this.sources.values()) {
      const d = this.sourceDeadline(source);
      if (d !== null) at(d);
    }
    if (this.state === 'fetching' && this.needsBytes()) at(this.lastProgress + this.config.stallMs);
    if (this.sources.size < this.config.maxSources && this.needsSource()) {
      for (const [peer, h] of this.holders) if (h.up && !h.banned && !this.sources.has(peer)) at(h.retryAt);
    }
    return next;
  }

  /**
   * @private
   * @param {Source} source
   * @returns {number | null}
   */
  sourceDeadline(source) {
    if (source.phase === 'ready') return source.asked.length === 0 ? null : source.last + this.config.stallMs;
    return source.last + this.config.openTimeoutMs;
  }

  /**
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  handleTimeout(now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    if (isOver(this.state)) return out;
    /** @type {[string, string][]} */
    const failed = [];
    for (const peer of this.sourcePeers()) {
      const source = /** @type {Source} */ (this.sources.get(peer));
      const d = this.sourceDeadline(source);
      if (d !== null && now >= d) failed.push([peer, source.phase === 'ready' ? 'stalled' : 'timeout']);
    }
    for (const [peer, error] of failed) this.failSource(peer, error, 'close', now, out);
    this.settle(now, out);
    return out;
  }

  /**
   * @private
   * @param {string} peer
   * @param {number} first
   * @param {Uint8Array} hashes
   * @param {number} now
   */
  listPart(peer, first, hashes, now) {
    const source = /** @type {Source} */ (this.sources.get(peer));
    if (source.phase !== 'listing') return false;
    if (first * 32 !== source.list.length || source.list.length + hashes.length > this.count * 32) return false;
    for (const b of hashes) source.list.push(b);
    source.last = now;
    this.lastProgress = now;
    if (source.list.length < this.count * 32) return true;
    const bytes = Uint8Array.from(source.list);
    /** @type {Uint8Array[]} */
    const list = [];
    for (let i = 0; i < this.count; i += 1) list.push(bytes.subarray(i * 32, i * 32 + 32));
    if (hex(rootOf(list)) !== this.rootHex) return false;
    source.phase = 'ready';
    source.list = [];
    this.list = list;
    return true;
  }

  /**
   * @private
   * @param {string} peer
   * @param {number} index
   * @param {number} offset
   * @param {Uint8Array} bytes
   * @param {number} now
   * @param {ReceiverAction[]} out
   * @param {Uint8Array} [digest]
   */
  piecePart(peer, index, offset, bytes, now, out, digest) {
    const len = pieceLen(this.meta, index);
    const source = /** @type {Source} */ (this.sources.get(peer));
    if (source.phase !== 'ready' || source.asked[0] !== index || offset !== source.received || offset + bytes.length > len || bytes.length > source.chunk) {
      return false;
    }
    source.received += bytes.length;
    source.outstanding = Math.max(0, source.outstanding - bytes.length);
    source.last = now;
    if (!this.config.nativeDigests) source.hasher.update(bytes);
    this.lastProgress = now;
    // The piece next in order is fed to the whole file's hash as it
    // arrives, from its first byte.
    const feeding = this.speculative?.piece ?? null;
    if (index === this.cursor && this.readback === null && (feeding === index || offset === 0)) {
      if (this.config.nativeDigests) {
        // The caller hashes the whole file, fed once the piece checked.
        if (feeding === null) this.speculative = { piece: index, snapshot: null };
      } else {
        if (feeding === null) this.speculative = { piece: index, snapshot: this.whole.clone() };
        this.whole.update(bytes);
      }
    }
    this.unwritten += bytes.length;
    out.push({ write: { offset: index * this.meta.piece + offset, data: bytes } });
    if (source.received < len) return true;
    source.asked.shift();
    source.received = 0;
    if (this.config.nativeDigests && digest === undefined) throw new TypeError('a piece completed without its digest');
    const hash = this.config.nativeDigests ? /** @type {Uint8Array} */ (digest) : source.hasher.digest();
    if (!this.config.nativeDigests) source.hasher = nobleSha256.create();
    this.asked[index] = false;
    const speculative = this.speculative?.piece === index ? this.speculative : null;
    if (speculative) this.speculative = null;
    if (same(hash, this.list?.[index])) {
      if (!this.have[index]) this.missing -= 1;
      this.have[index] = true;
      const h = this.holders.get(peer);
      if (h) h.failures = 0;
      out.push({ verified: index });
      if (speculative) this.feedWhole(index, out);
      return true;
    }
    if (speculative?.snapshot) this.whole = speculative.snapshot;
    out.push({ corrupt: { piece: index, from: peer } });
    const h = this.holder(peer);
    h.badPieces += 1;
    if (h.badPieces >= this.config.maxBadPieces) this.failSource(peer, 'bad_pieces', 'cancel', now, out);
    return true;
  }

  /**
   * Drops a holder: what it had not finished is lacking again.
   * @private
   * @param {string} peer
   * @param {string} error
   * @param {'nothing' | 'close' | 'cancel'} tell
   * @param {number} now
   * @param {ReceiverAction[]} out
   */
  failSource(peer, error, tell, now, out) {
    const source = this.sources.get(peer);
    if (!source) return;
    this.sources.delete(peer);
    for (const piece of source.asked) this.asked[piece] = false;
    if (source.asked.length > 0 && this.speculative?.piece === source.asked[0]) {
      if (this.speculative.snapshot) this.whole = this.speculative.snapshot;
      this.speculative = null;
    }
    const h = this.holder(peer);
    h.failures += 1;
    const backoff = Math.min(this.config.backoffMinMs * 2 ** Math.min(h.failures - 1, 20), this.config.backoffMaxMs);
    h.retryAt = now + (error === 'refused:unavailable' ? this.config.unavailableMs : backoff);
    if (['protocol', 'bad_pieces', 'refused:changed', 'refused:cancelled', 'refused:protocol'].includes(error)) h.banned = true;
    if (tell === 'cancel') out.push({ send: { to: peer, text: controlJson({ type: 'cancel', reason: 'protocol' }) } });
    if (tell !== 'nothing') out.push({ close: peer });
    out.push({ source_failed: { peer, error } });
  }

  /** @private */
  needsSource() {
    return this.list === null || this.have.some((h, i) => !h && !this.asked[i]);
  }

  /** @private */
  needsBytes() {
    return this.list === null || this.missing > 0;
  }

  /**
   * @private
   * @param {number} now
   * @param {ReceiverAction[]} out
   */
  settle(now, out) {
    if (isOver(this.state) || !this.accepted || !this.started) return;
    this.ask(now, out);
    this.openSources(now, out);
    this.readBack(out);
    if (this.cursor === this.count && this.unwritten === 0) {
      if (!this.config.nativeDigests) {
        const digest = hex(this.whole.digest());
        this.whole = nobleSha256.create();
        this.finish(digest, out);
      } else if (!this.finishing) {
        this.finishing = true;
        out.push({ whole_digest: {} });
      }
      return;
    }
    /** @type {ReceiverState} */
    let state = 'fetching';
    if (!this.needsBytes()) state = 'checking';
    else if (now >= this.lastProgress + this.config.stallMs) state = { stalled: { since: this.lastProgress } };
    this.setState(state, out);
  }

  /**
   * @private
   * @param {ReceiverState} state
   * @param {ReceiverAction[]} out
   */
  setState(state, out) {
    if (!sameState(this.state, state)) {
      this.state = state;
      out.push({ state });
    }
  }

  /**
   * @private
   * @param {number} now
   * @param {ReceiverAction[]} out
   */
  ask(now, out) {
    for (const peer of this.sourcePeers()) {
      const source = /** @type {Source} */ (this.sources.get(peer));
      if (source.phase !== 'ready') continue;
      /** @type {number[]} */
      const want = [];
      let next = 0;
      while (want.length < MAX_WANT && (source.asked.length === 0 || source.outstanding + this.unwritten < this.config.window)) {
        let piece = next;
        while (piece < this.count && (this.have[piece] || this.asked[piece])) piece += 1;
        if (piece >= this.count) break;
        next = piece + 1;
        this.asked[piece] = true;
        source.asked.push(piece);
        source.outstanding += pieceLen(this.meta, piece);
        want.push(piece);
      }
      if (want.length > 0) {
        if (source.asked.length === want.length) source.last = now;
        out.push({ send: { to: peer, text: controlJson({ type: 'want', pieces: want }) } });
      }
    }
  }

  /**
   * @private
   * @param {number} now
   * @param {ReceiverAction[]} out
   */
  openSources(now, out) {
    while (this.sources.size < this.config.maxSources && this.needsSource()) {
      /** @param {string} peer */
      const ready = (peer) => {
        const h = this.holders.get(peer);
        return h !== undefined && h.up && !h.banned && h.retryAt <= now && !this.sources.has(peer);
      };
      let peer = ready(this.author) ? this.author : null;
      if (peer === null) peer = [...this.holders.keys()].sort().find(ready) ?? null;
      if (peer === null) break;
      this.sources.set(peer, { phase: 'opening', list: [], asked: [], received: 0, hasher: nobleSha256.create(), outstanding: 0, chunk: CHUNK, last: now });
      out.push({ open: peer });
    }
  }

  /**
   * Under `nativeDigests`: the whole file's SHA-256, as hex, that the
   * caller computed from what `whole` actions asked it to hash, in order
   * (the page's worker does, as it writes the file).
   * @param {string} digest
   * @param {number} now
   * @returns {ReceiverAction[]}
   */
  wholeDigest(digest, now) {
    /** @type {ReceiverAction[]} */
    const out = [];
    if (!this.finishing || isOver(this.state)) return out;
    this.finishing = false;
    this.finish(digest, out);
    this.settle(now, out);
    return out;
  }

  /**
   * Piece `index`, checked, is the next in order: on into the whole file's
   * hash (the caller's, under `nativeDigests`; the machine's was fed as it came).
   * @private
   * @param {number} index
   * @param {ReceiverAction[]} out
   */
  feedWhole(index, out) {
    this.cursor += 1;
    if (this.config.nativeDigests) out.push({ whole: { offset: index * this.meta.piece, len: pieceLen(this.meta, index) } });
  }

  /**
   * @private
   * @param {string} digest
   * @param {ReceiverAction[]} out
   */
  finish(digest, out) {
    for (const peer of this.sourcePeers()) out.push({ close: peer });
    this.sources.clear();
    this.setState(digest === this.sha256Hex ? 'complete' : { failed: 'hash_mismatch' }, out);
  }

  /**
   * @private
   * @param {ReceiverAction[]} out
   */
  readBack(out) {
    const cursor = this.cursor;
    if (this.readback !== null || this.speculative !== null || this.list === null || cursor >= this.count || !this.have[cursor]) {
      return;
    }
    this.readback = { piece: cursor, next: 0, hasher: nobleSha256.create(), snapshot: this.config.nativeDigests ? null : this.whole.clone() };
    out.push({ read: { offset: cursor * this.meta.piece, len: Math.min(this.config.readBytes, pieceLen(this.meta, cursor)) } });
  }
}
