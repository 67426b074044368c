// @ts-check
/**
 * peerchat's end-to-end protection (protocol version 2): the browser's side.
 *
 * The twin of the Rust crate `peerchat-e2e`; both reproduce the known-answer
 * vectors in `tests/vectors/e2e.json` byte for byte, and `docs/protocol.md`
 * is the normative description. WebCrypto only: HKDF-SHA256, AES-256-GCM,
 * SHA-256/512, Ed25519 (ECDSA P-256 where a browser has no Ed25519).
 *
 * - Secrets, contexts, pairings: {@link parseSecret}, {@link makeSecret},
 *   {@link roomContext}, {@link parsePairing}.
 * - The signal key and sealed payloads: {@link SignalKey}; the replay guard:
 *   {@link ReplayGuard}; both for one client in one room: {@link RoomCrypto}
 *   (`seal(to, payload, now)`, `open(from, payload, now)`), which refuses
 *   with a {@link Refusal} (`tampered`, `malformed`, `replayed`, `stale`,
 *   `clock_skew`).
 * - DTLS fingerprints: {@link fingerprintFromSdp}, {@link normalizeFingerprint}.
 * - Identity keys: {@link generateIdentity}, {@link verifySignature};
 *   hellos: {@link buildHello}, {@link verifyHello}; signed messages:
 *   {@link signMessage}, {@link verifyMessage}; safety numbers:
 *   {@link safetyNumber}.
 *
 * WebCrypto exists only in secure contexts (https, localhost, 127.0.0.1):
 * everything that needs it first calls {@link requireSecureContext}, which
 * says so clearly elsewhere.
 * @module
 */

/** An error with a stable code (the codes of the shared vectors). */
export class E2eError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'E2eError';
    this.code = code;
  }
}

/**
 * Why a sealed signal was refused: `tampered`, `malformed`, `replayed`,
 * `stale` or `clock_skew` (with `offsetMs`, the signal's time minus ours).
 * Refusals never tear a connection down.
 */
export class Refusal extends Error {
  /**
   * @param {'tampered' | 'malformed' | 'replayed' | 'stale' | 'clock_skew'} code
   * @param {string} message
   * @param {number} [offsetMs]
   */
  constructor(code, message, offsetMs) {
    super(message);
    this.name = 'Refusal';
    this.code = code;
    this.offsetMs = offsetMs;
  }
}

const tampered = () =>
  new Refusal(
    'tampered',
    "a signal did not authenticate: it was altered, misdirected, or not sealed with this room's secret",
  );
/** @param {string} why */
const malformed = (why) => new Refusal('malformed', `a signal sealed with this room's secret is malformed: ${why}`);

/**
 * Throws unless this page can use WebCrypto (a secure context).
 */
export function requireSecureContext() {
  if (globalThis.isSecureContext === false || !globalThis.crypto?.subtle) {
    throw new E2eError(
      'insecure_context',
      'peerchat needs a secure page to protect the chat: open it over https://, ' +
        'or on this machine as http://localhost or http://127.0.0.1',
    );
  }
}

/** @returns {SubtleCrypto} */
function subtle() {
  requireSecureContext();
  return globalThis.crypto.subtle;
}

/** @param {number} n */
function randomBytes(n) {
  const bytes = new Uint8Array(n);
  globalThis.crypto.getRandomValues(bytes);
  return bytes;
}

/** The largest integer the protocol's numbers may hold (2^53 − 1). */
export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

const encoder = new TextEncoder();
/** @param {string} text */
const utf8 = (text) => encoder.encode(text);

/**
 * @param {Uint8Array[]} parts
 * @returns {Uint8Array<ArrayBuffer>}
 */
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A copy of bytes in a buffer of their own (what WebCrypto takes).
 * @param {Uint8Array} bytes
 * @returns {Uint8Array<ArrayBuffer>}
 */
const own = (bytes) => new Uint8Array(bytes);

// ---- Base64url ----------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_ALPHABET = /^[A-Za-z0-9_-]*$/;

/**
 * Base64url without padding.
 * @param {Uint8Array} bytes
 */
export function base64urlEncode(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += B64[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/**
 * Strict base64url without padding: null for anything else (padding, white
 * space, the standard alphabet, unused bits set).
 * @param {string} text
 * @returns {Uint8Array<ArrayBuffer> | null}
 */
export function base64urlDecode(text) {
  if (!B64_ALPHABET.test(text) || text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let bits = 0;
  let acc = 0;
  let at = 0;
  for (const c of text) {
    acc = (acc << 6) | B64.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/** @param {unknown} text */
const isEpochOrId = (text) =>
  typeof text === 'string' && text.length >= 22 && text.length <= 64 && B64_ALPHABET.test(text);

// ---- Secrets, contexts, pairings ----------------------------------------------

/** Bytes of a secret peerchat makes. */
export const SECRET_BYTES = 32;

/**
 * A new room secret in its fragment form (43 base64url characters, 256
 * random bits): what follows `#` in the room link.
 */
export function makeSecret() {
  return base64urlEncode(randomBytes(SECRET_BYTES));
}

/**
 * Reads the secret from a link's fragment (`location.hash`, with or
 * without `#`): 22 to 86 base64url characters decoding to 16 to 64 bytes.
 * @param {string} fragment
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function parseSecret(fragment) {
  const text = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  const ask = 'ask for the full link, including the part after #';
  if (text === '') throw new E2eError('missing_secret', `the link has no secret: ${ask}`);
  const bytes = text.length >= 22 && text.length <= 86 ? base64urlDecode(text) : null;
  if (!bytes || bytes.length < 16 || bytes.length > 64) {
    throw new E2eError('bad_secret', `the link's secret is damaged: ${ask}`);
  }
  return bytes;
}

/**
 * The context of a room: `room:ID`.
 * @param {string} id
 */
export function roomContext(id) {
  if (!isEpochOrId(id)) throw new E2eError('bad_context', 'a room id must be 22 to 64 base64url characters');
  return `room:${id}`;
}

/**
 * The context of a mailbox pairing: `mailbox:ID`.
 * @param {string} id
 */
export function mailboxContext(id) {
  if (!isEpochOrId(id)) throw new E2eError('bad_context', 'a mailbox id must be 22 to 64 base64url characters');
  return `mailbox:${id}`;
}

/** The context of connection codes. */
export const CODE_CONTEXT = 'code';

/**
 * Reads a mailbox pairing, `ID.SECRET` (white space around it ignored).
 * @param {string} text
 * @returns {{id: string, secret: Uint8Array<ArrayBuffer>, context: string}}
 */
export function parsePairing(text) {
  const trimmed = text.trim();
  const dot = trimmed.indexOf('.');
  const id = trimmed.slice(0, dot);
  if (dot < 0 || !isEpochOrId(id)) {
    throw new E2eError('bad_pairing', 'a pairing is ID.SECRET, as the first side printed it');
  }
  return { id, secret: parseSecret(trimmed.slice(dot + 1)), context: mailboxContext(id) };
}

/** A new mailbox pairing, `ID.SECRET`. */
export function makePairing() {
  return `${base64urlEncode(randomBytes(16))}.${makeSecret()}`;
}

// ---- The signal key and sealed payloads --------------------------------------

/** The HKDF salt. */
export const KEY_SALT = 'peerchat-v2';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * @param {Uint8Array} secret
 * @param {string} context
 */
function hkdfParams(secret, context) {
  return {
    base: subtle().importKey('raw', own(secret), 'HKDF', false, ['deriveBits', 'deriveKey']),
    params: { name: 'HKDF', hash: 'SHA-256', salt: utf8(KEY_SALT), info: utf8(`signal key\n${context}`) },
  };
}

/**
 * The bytes of the signal key (the HKDF output; for the known-answer
 * vectors: {@link SignalKey.derive} never exposes them).
 * @param {Uint8Array} secret
 * @param {string} context
 */
export async function signalKeyBytes(secret, context) {
  const { base, params } = hkdfParams(secret, context);
  return new Uint8Array(await subtle().deriveBits(params, await base, 256));
}

/**
 * The associated data of a payload sealed in `context` from `from` to `to`.
 * @param {string} context
 * @param {string} from
 * @param {string} to
 */
export function signalAd(context, from, to) {
  return utf8(`peerchat-v2 signal\n${context}\n${from}\n${to}`);
}

/**
 * @typedef {{e: string, n: number, ts: number}} Stamp
 *   the replay guard's fields: the sender's epoch, counter and clock
 * @typedef {{payload: Record<string, unknown>, stamp: Stamp}} Plain
 *   an opened payload: the sender's payload and its stamp
 * @typedef {{iv: string, ct: string}} Sealed
 *   a sealed payload on the wire
 */

/** The plaintext fields the sealing layer adds. */
export const RESERVED_FIELDS = ['e', 'n', 'ts'];

/**
 * The plaintext bytes of a payload with its stamp.
 * @param {Record<string, unknown>} payload
 * @param {Stamp} stamp
 */
export function plaintext(payload, stamp) {
  for (const name of RESERVED_FIELDS) {
    if (Object.hasOwn(payload, name)) {
      throw new E2eError('reserved_field', `a signal payload may not carry the field "${name}"`);
    }
  }
  if (!Number.isSafeInteger(stamp.n) || stamp.n < 1) throw new E2eError('out_of_range', 'n is out of range');
  if (!Number.isSafeInteger(stamp.ts) || stamp.ts < 0) throw new E2eError('out_of_range', 'ts is out of range');
  return utf8(JSON.stringify({ ...payload, e: stamp.e, n: stamp.n, ts: stamp.ts }));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads authenticated plaintext bytes, or refuses them as `malformed`.
 * @param {Uint8Array} bytes
 * @returns {Plain}
 */
export function parsePlaintext(bytes) {
  /** @type {unknown} */
  let value;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    throw malformed('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('not a JSON object');
  const { e, n, ts, ...payload } = /** @type {Record<string, unknown>} */ (value);
  if (typeof e !== 'string' || !isEpochOrId(e)) throw malformed('no valid epoch (e)');
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw malformed('no valid counter (n)');
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) throw malformed('no valid time (ts)');
  return { payload, stamp: { e, n, ts: ts === 0 ? 0 : ts } };
}

/**
 * Reads the wire form `{"iv":…,"ct":…}`, or refuses it as `tampered`.
 * @param {unknown} payload
 */
function readSealed(payload) {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw tampered();
  const { iv, ct } = /** @type {Record<string, unknown>} */ (payload);
  const ivBytes = typeof iv === 'string' ? base64urlDecode(iv) : null;
  const ctBytes = typeof ct === 'string' ? base64urlDecode(ct) : null;
  if (!ivBytes || ivBytes.length !== IV_BYTES || !ctBytes || ctBytes.length < TAG_BYTES) throw tampered();
  return { iv: ivBytes, ct: ctBytes };
}

/** A context's signal key (AES-256-GCM, not extractable). */
export class SignalKey {
  /**
   * @param {string} context
   * @param {CryptoKey} key
   */
  constructor(context, key) {
    this.context = context;
    this.key = key;
  }

  /**
   * Derives the key of `context` from the secret.
   * @param {Uint8Array} secret
   * @param {string} context
   */
  static async derive(secret, context) {
    const { base, params } = hkdfParams(secret, context);
    const key = await subtle().deriveKey(params, await base, { name: 'AES-GCM', length: 256 }, false, [
      'encrypt',
      'decrypt',
    ]);
    return new SignalKey(context, key);
  }

  /**
   * Seals plaintext bytes from `from` to `to` with the given IV (which
   * must never repeat under this key: draw it at random).
   * @param {Uint8Array} iv
   * @param {string} from
   * @param {string} to
   * @param {Uint8Array} bytes
   * @returns {Promise<Sealed>}
   */
  async seal(iv, from, to, bytes) {
    const params = { name: 'AES-GCM', iv: own(iv), additionalData: signalAd(this.context, from, to), tagLength: 128 };
    const ct = new Uint8Array(await subtle().encrypt(params, this.key, own(bytes)));
    return { iv: base64urlEncode(iv), ct: base64urlEncode(ct) };
  }

  /**
   * Opens a sealed payload that `from` sent to `to`: its plaintext bytes,
   * or a `tampered` {@link Refusal}.
   * @param {string} from
   * @param {string} to
   * @param {unknown} payload
   */
  async open(from, to, payload) {
    const { iv, ct } = readSealed(payload);
    const params = { name: 'AES-GCM', iv, additionalData: signalAd(this.context, from, to), tagLength: 128 };
    try {
      return new Uint8Array(await subtle().decrypt(params, this.key, ct));
    } catch {
      throw tampered();
    }
  }

  /**
   * Opens a sealed payload and reads it, without any replay check.
   * @param {string} from
   * @param {string} to
   * @param {unknown} payload
   */
  async openPayload(from, to, payload) {
    return parsePlaintext(await this.open(from, to, payload));
  }
}

// ---- The replay guard ---------------------------------------------------------

/**
 * @typedef {{windowMs?: number, retired?: number, maxSenders?: number}} GuardConfig
 * @typedef {{e: string, n: number, first: number, retired: string[]}} SenderState
 */

/**
 * The replay guard of one receiver: per sender, the current epoch, the
 * last counter accepted in it, the time of its first accepted signal, and
 * a bounded list of retired epochs. See docs/protocol.md for the rules.
 */
export class ReplayGuard {
  /** @param {GuardConfig} [config] */
  constructor({ windowMs = 10 * 60 * 1000, retired = 16, maxSenders = 4096 } = {}) {
    this.windowMs = windowMs;
    this.retiredMax = retired;
    this.maxSenders = maxSenders;
    /** @type {Map<string, SenderState>} least recently accepted first */
    this.states = new Map();
  }

  /** How many senders it remembers. */
  get senders() {
    return this.states.size;
  }

  /**
   * @param {number} ts
   * @param {number} now
   */
  skew(ts, now) {
    const offsetMs = ts - now;
    if (Math.abs(offsetMs) > this.windowMs) {
      const minutes = Math.ceil(Math.abs(offsetMs) / 60000);
      throw new Refusal('clock_skew', `the sender's clock is ${minutes} minutes off; its signals are refused`, offsetMs);
    }
  }

  /**
   * Throws the {@link Refusal} a signal would get, without changing
   * anything.
   * @param {string} from
   * @param {Stamp} stamp
   * @param {number} now
   */
  check(from, { e, n, ts }, now) {
    const s = this.states.get(from);
    if (s && s.e === e) {
      if (n <= s.n) throw new Refusal('replayed', 'a signal was replayed');
    } else if (s && (s.retired.includes(e) || ts <= s.first)) {
      throw new Refusal('stale', 'a signal from an earlier session of its sender was replayed');
    } else {
      this.skew(ts, now);
    }
  }

  /**
   * Accepts a signal (and remembers it) or throws its {@link Refusal} (and
   * changes nothing).
   * @param {string} from
   * @param {Stamp} stamp
   * @param {number} now
   */
  accept(from, stamp, now) {
    this.check(from, stamp, now);
    let s = this.states.get(from);
    if (!s) {
      if (this.states.size >= this.maxSenders) {
        const oldest = this.states.keys().next();
        if (!oldest.done) this.states.delete(oldest.value);
      }
      s = { e: stamp.e, n: stamp.n, first: stamp.ts, retired: [] };
    } else if (s.e !== stamp.e) {
      s.retired.push(s.e);
      if (s.retired.length > this.retiredMax) s.retired.splice(0, s.retired.length - this.retiredMax);
      s.e = stamp.e;
      s.first = stamp.ts;
    }
    s.n = stamp.n;
    this.states.delete(from);
    this.states.set(from, s);
  }
}

// ---- One client in one room ---------------------------------------------------

/**
 * Everything one client needs to seal and open the signaling payloads of
 * one context: the signal key, its own epoch and counter, and the replay
 * guard. Make one per join of a room (a new one has a new epoch). Seals
 * and opens run one after another, in the order they were called, so the
 * counter order is the sending order and signals are judged in the order
 * they arrived.
 */
export class RoomCrypto {
  /**
   * @param {SignalKey} key
   * @param {string} me
   * @param {GuardConfig} [config]
   */
  constructor(key, me, config) {
    this.key = key;
    this.me = me;
    this.epoch = base64urlEncode(randomBytes(16));
    this.counter = 0;
    this.guard = new ReplayGuard(config);
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
  }

  /**
   * A room crypto for `me` (its peer id) in `context`.
   * @param {Uint8Array} secret
   * @param {string} context
   * @param {string} me
   * @param {GuardConfig} [config]
   */
  static async create(secret, context, me, config) {
    return new RoomCrypto(await SignalKey.derive(secret, context), me, config);
  }

  get context() {
    return this.key.context;
  }

  /**
   * Changes this client's peer id (the epoch and counter go on).
   * @param {string} me
   */
  setMe(me) {
    this.me = me;
  }

  /**
   * @template T
   * @param {() => Promise<T>} job
   * @returns {Promise<T>}
   */
  serial(job) {
    const result = this.queue.then(job);
    this.queue = result.catch(() => {});
    return result;
  }

  /**
   * Seals a payload for `to` at `now` (ms since the Unix epoch): the
   * `payload` of the `signal` to send.
   * @param {string} to
   * @param {Record<string, unknown>} payload
   * @param {number} now
   * @returns {Promise<Sealed>}
   */
  seal(to, payload, now) {
    return this.serial(async () => {
      const stamp = { e: this.epoch, n: this.counter + 1, ts: now };
      const bytes = plaintext(payload, stamp);
      const sealed = await this.key.seal(randomBytes(IV_BYTES), this.me, to, bytes);
      this.counter += 1;
      return sealed;
    });
  }

  /**
   * Opens the `payload` of a `signal` the server delivered `from` a peer
   * at `now`: resolves to what the peer sealed, or rejects with a
   * {@link Refusal}.
   * @param {string} from
   * @param {unknown} payload
   * @param {number} now
   * @returns {Promise<Plain>}
   */
  open(from, payload, now) {
    return this.serial(async () => {
      const plain = await this.key.openPayload(from, this.me, payload);
      this.guard.accept(from, plain.stamp, now);
      return plain;
    });
  }
}

// ---- DTLS fingerprints --------------------------------------------------------

/** The one hash function a fingerprint may use. */
export const FINGERPRINT_HASH = 'sha-256';

/**
 * A fingerprint in normal form, `sha-256 AB:CD:…` (upper case), from its
 * hash function and value in any case.
 * @param {string} hash
 * @param {string} value
 */
export function normalizeFingerprint(hash, value) {
  if (hash.toLowerCase() !== FINGERPRINT_HASH) {
    throw new E2eError('unsupported_hash', `a DTLS fingerprint uses ${JSON.stringify(hash)}, not sha-256`);
  }
  if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}$/.test(value)) {
    throw new E2eError('bad_fingerprint', 'a DTLS fingerprint is malformed');
  }
  return `${FINGERPRINT_HASH} ${value.toUpperCase()}`;
}

/**
 * A fingerprint from the value of an `a=fingerprint` attribute.
 * @param {string} attribute
 */
export function parseFingerprint(attribute) {
  const parts = attribute.split(/[ \t]+/).filter((p) => p !== '');
  if (parts.length !== 2) throw new E2eError('bad_fingerprint', 'a DTLS fingerprint is malformed');
  return normalizeFingerprint(parts[0], parts[1]);
}

/**
 * The fingerprint of a session description: every `a=fingerprint` line
 * (session level and in every media section) must name the same SHA-256
 * fingerprint.
 * @param {string} sdp
 */
export function fingerprintFromSdp(sdp) {
  /** @type {string | null} */
  let found = null;
  for (const raw of sdp.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith('a=fingerprint:')) continue;
    const fp = parseFingerprint(line.slice('a=fingerprint:'.length));
    if (found !== null && found !== fp) {
      throw new E2eError('conflicting_fingerprints', 'the session description names two different DTLS fingerprints');
    }
    found = fp;
  }
  if (found === null) throw new E2eError('no_fingerprint', 'the session description has no DTLS fingerprint');
  return found;
}

/**
 * The fingerprint of a DER-encoded certificate.
 * @param {Uint8Array} der
 */
export async function certificateFingerprint(der) {
  const hash = new Uint8Array(await subtle().digest('SHA-256', own(der)));
  return `${FINGERPRINT_HASH} ${Array.from(hash, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':')}`;
}

// ---- Identity keys ------------------------------------------------------------

/**
 * @typedef {'ed25519' | 'p256'} Alg
 * @typedef {{alg: Alg, key: Uint8Array}} PublicKey
 *   a public identity key: its algorithm and raw bytes (32 for Ed25519, 65
 *   uncompressed for P-256)
 * @typedef {{alg: Alg, privateKey: CryptoKey, publicKey: PublicKey}} Identity
 *   this browser's identity: the private key (not extractable) and the
 *   public key
 */

const ALGS = {
  ed25519: { tag: 1, length: 32, params: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  p256: {
    tag: 2,
    length: 65,
    params: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
  },
};

/**
 * A public key from its algorithm and raw bytes.
 * @param {string} alg
 * @param {Uint8Array} key
 * @returns {PublicKey}
 */
export function publicKey(alg, key) {
  if (alg !== 'ed25519' && alg !== 'p256') {
    throw new E2eError('unknown_alg', `unknown identity key algorithm ${JSON.stringify(alg)}`);
  }
  if (key.length !== ALGS[alg].length || (alg === 'p256' && key[0] !== 0x04)) {
    throw new E2eError('bad_key', 'the identity key is malformed');
  }
  return { alg, key: own(key) };
}

/**
 * A public key from its wire form, `{"alg":…,"key":B64URL}` (other fields
 * ignored).
 * @param {unknown} wire
 */
export function publicKeyFromWire(wire) {
  const { alg, key } = /** @type {Record<string, unknown>} */ (wire ?? {});
  if (typeof alg !== 'string') throw new E2eError('unknown_alg', 'the identity key has no algorithm');
  const bytes = typeof key === 'string' ? base64urlDecode(key) : null;
  if (!bytes) throw new E2eError('bad_key', 'the identity key is malformed');
  return publicKey(alg, bytes);
}

/**
 * The wire form of a public key.
 * @param {PublicKey} pk
 */
export function publicKeyToWire(pk) {
  return { alg: pk.alg, key: base64urlEncode(pk.key) };
}

/**
 * The tag byte and the raw key: a key's bytes in safety numbers and pins.
 * @param {PublicKey} pk
 */
export function taggedKey(pk) {
  return concat(Uint8Array.of(ALGS[pk.alg].tag), pk.key);
}

/** @type {Map<string, Promise<CryptoKey>>} public keys imported for checking signatures, most recently used last */
const verifyingKeys = new Map();
/** How many imported public keys are kept (a room's members, with room to spare). */
const VERIFYING_KEYS_KEPT = 256;

/**
 * `pk` imported for checking signatures: imported once, then reused for
 * every hello and message it signed (each import is a round trip to
 * WebCrypto's thread; a fresh renderer's first ones take milliseconds).
 * @param {PublicKey} pk
 * @returns {Promise<CryptoKey>}
 */
function verifyingKey(pk) {
  const name = `${pk.alg}:${base64urlEncode(pk.key)}`;
  let key = verifyingKeys.get(name);
  if (key) {
    verifyingKeys.delete(name);
  } else {
    key = subtle().importKey('raw', own(pk.key), ALGS[pk.alg].params, false, ['verify']);
    // A failed import is not kept: the next check tries again.
    key.catch(() => verifyingKeys.get(name) === key && verifyingKeys.delete(name));
    const oldest = verifyingKeys.keys().next();
    if (verifyingKeys.size >= VERIFYING_KEYS_KEPT && !oldest.done) verifyingKeys.delete(oldest.value);
  }
  verifyingKeys.set(name, key);
  return key;
}

/**
 * Whether `sig` is a signature by `pk` over `message`.
 * @param {PublicKey} pk
 * @param {Uint8Array} message
 * @param {Uint8Array} sig
 */
export async function verifySignature(pk, message, sig) {
  const alg = ALGS[pk.alg];
  try {
    const key = await verifyingKey(pk);
    return await subtle().verify(alg.sign, key, own(sig), own(message));
  } catch (e) {
    if (e instanceof E2eError) throw e;
    return false;
  }
}

/**
 * @param {Alg} alg
 * @param {CryptoKey} privateKey
 * @param {CryptoKey} pub
 * @returns {Promise<Identity>}
 */
async function identityOf(alg, privateKey, pub) {
  const raw = new Uint8Array(await subtle().exportKey('raw', pub));
  return { alg, privateKey, publicKey: publicKey(alg, raw) };
}

/**
 * A new identity: Ed25519 where WebCrypto has it, ECDSA P-256 elsewhere;
 * the private key is not extractable (it can be kept in IndexedDB, never
 * read out).
 * @param {{prefer?: Alg}} [options] `prefer: 'p256'` skips Ed25519 (tests)
 * @returns {Promise<Identity>}
 */
export async function generateIdentity({ prefer = 'ed25519' } = {}) {
  for (const alg of /** @type {Alg[]} */ (prefer === 'p256' ? ['p256'] : ['ed25519', 'p256'])) {
    try {
      const pair = /** @type {CryptoKeyPair} */ (
        await subtle().generateKey(ALGS[alg].params, false, ['sign', 'verify'])
      );
      return await identityOf(alg, pair.privateKey, pair.publicKey);
    } catch (e) {
      if (alg === 'p256' || e instanceof E2eError) throw e;
    }
  }
  throw new E2eError('no_identity', 'this browser can make no identity key');
}

/**
 * An identity from a PKCS#8 private key (tests and imports; the private
 * key is imported not extractable).
 * @param {Alg} alg
 * @param {Uint8Array} pkcs8
 * @returns {Promise<Identity>}
 */
export async function identityFromPkcs8(alg, pkcs8) {
  const params = ALGS[alg].params;
  const readable = await subtle().importKey('pkcs8', own(pkcs8), params, true, ['sign']);
  const jwk = await subtle().exportKey('jwk', readable);
  delete jwk.d;
  jwk.key_ops = ['verify'];
  const pub = await subtle().importKey('jwk', jwk, params, true, ['verify']);
  const privateKey = await subtle().importKey('pkcs8', own(pkcs8), params, false, ['sign']);
  return identityOf(alg, privateKey, pub);
}

/**
 * Signs bytes with an identity (Ed25519, or P-256 in `r || s` form).
 * @param {Identity} identity
 * @param {Uint8Array} bytes
 */
export async function signWith(identity, bytes) {
  return new Uint8Array(await subtle().sign(ALGS[identity.alg].sign, identity.privateKey, own(bytes)));
}

/**
 * The name a pin is kept under: the nickname in Unicode NFKC, then lower
 * case.
 * @param {string} nick
 */
export function pinName(nick) {
  return nick.normalize('NFKC').toLowerCase();
}

// ---- Hellos -------------------------------------------------------------------

/** The envelope version that carries hellos and signed messages. */
export const ENVELOPE_VERSION = 2;

/**
 * One connection as this side sees it.
 * @typedef {object} Link
 * @property {string} context `room:ID`, …
 * @property {string} sid the connection's id
 * @property {string} me this side's peer id
 * @property {string} myNick this side's nickname
 * @property {string} peer the other side's peer id
 * @property {string} peerNick the other side's nickname, as announced
 * @property {string} myFingerprint this side's certificate's fingerprint
 * @property {string} peerFingerprint the other side's, from the description applied
 */

/**
 * @typedef {{key: PublicKey, sig: Uint8Array}} Hello
 */

/**
 * @param {string} name
 * @param {string} value
 */
function line(name, value) {
  if (value === '' || value.includes('\n')) {
    throw new E2eError('bad_field', `the ${name} is empty or holds a line break`);
  }
  return value;
}

/**
 * The signed bytes of a hello.
 * @param {{context: string, sid: string, signer: string, signerNick: string, receiver: string,
 *   signerFingerprint: string, receiverFingerprint: string}} f
 */
export function helloSignedBytes(f) {
  return utf8(
    [
      'peerchat-v2 hello',
      line('context', f.context),
      line('sid', f.sid),
      line('signer id', f.signer),
      line('signer nickname', f.signerNick),
      line('receiver id', f.receiver),
      f.signerFingerprint,
      f.receiverFingerprint,
    ].join('\n'),
  );
}

/**
 * The bytes this side signs in its own hello.
 * @param {Link} link
 */
export function myHelloBytes(link) {
  return helloSignedBytes({
    context: link.context,
    sid: link.sid,
    signer: link.me,
    signerNick: link.myNick,
    receiver: link.peer,
    signerFingerprint: link.myFingerprint,
    receiverFingerprint: link.peerFingerprint,
  });
}

/**
 * The bytes the other side's hello must be a signature over.
 * @param {Link} link
 */
export function peerHelloBytes(link) {
  return helloSignedBytes({
    context: link.context,
    sid: link.sid,
    signer: link.peer,
    signerNick: link.peerNick,
    receiver: link.me,
    signerFingerprint: link.peerFingerprint,
    receiverFingerprint: link.myFingerprint,
  });
}

/**
 * This side's hello on a connection.
 * @param {Identity} identity
 * @param {Link} link
 * @returns {Promise<Hello>}
 */
export async function buildHello(identity, link) {
  return { key: identity.publicKey, sig: await signWith(identity, myHelloBytes(link)) };
}

/**
 * Verifies the other side's hello against this side's view of the
 * connection; throws `bad_signature` if it does not match.
 * @param {Hello} hello
 * @param {Link} link
 */
export async function verifyHello(hello, link) {
  if (!(await verifySignature(hello.key, peerHelloBytes(link), hello.sig))) {
    throw new E2eError('bad_signature', "the hello's signature does not match this connection");
  }
}

/**
 * The envelope text of a hello.
 * @param {Hello} hello
 */
export function helloEnvelope(hello) {
  return JSON.stringify({
    v: ENVELOPE_VERSION,
    type: 'hello',
    alg: hello.key.alg,
    key: base64urlEncode(hello.key.key),
    sig: base64urlEncode(hello.sig),
  });
}

/**
 * Reads a hello envelope (parsed JSON): `v` an integer ≥ 2, `type`
 * `hello`, a valid key and a base64url signature.
 * @param {unknown} envelope
 * @returns {Hello}
 */
export function parseHello(envelope) {
  const bad = () => new E2eError('bad_hello', 'the hello is malformed');
  if (typeof envelope !== 'object' || envelope === null) throw bad();
  const { v, type, sig } = /** @type {Record<string, unknown>} */ (envelope);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < ENVELOPE_VERSION || type !== 'hello') throw bad();
  const key = publicKeyFromWire(envelope);
  const sigBytes = typeof sig === 'string' ? base64urlDecode(sig) : null;
  if (!sigBytes) throw bad();
  return { key, sig: sigBytes };
}

// ---- Signed messages ----------------------------------------------------------

/** The kind of a chat message; its body is the text. */
export const KIND_CHAT = 'chat';

/**
 * The fields of a message that its signature covers.
 * @typedef {object} SignedFields
 * @property {string} context
 * @property {string} author the author's peer id
 * @property {string} nick the author's nickname when they sent it
 * @property {number} seq
 * @property {number} clock
 * @property {number} ts
 * @property {string} id
 * @property {string} kind `chat`, …
 * @property {string} body a chat's text
 */

/**
 * @param {string} name
 * @param {number} n
 */
function decimal(name, n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new E2eError('bad_field', `the message's ${name} is out of range`);
  return String(n);
}

/**
 * The signed bytes of a message.
 * @param {SignedFields} m
 */
export function messageSignedBytes(m) {
  line('context', m.context);
  line('author', m.author);
  line('nickname', m.nick);
  line('id', m.id);
  line('kind', m.kind);
  return utf8(
    [
      'peerchat-v2 msg',
      m.context,
      m.author,
      m.nick,
      decimal('seq', m.seq),
      decimal('clock', m.clock),
      decimal('ts', m.ts),
      m.id,
      m.kind,
      m.body,
    ].join('\n'),
  );
}

/**
 * The author's signature over a message.
 * @param {Identity} identity
 * @param {SignedFields} m
 */
export async function signMessage(identity, m) {
  return signWith(identity, messageSignedBytes(m));
}

/**
 * Verifies a message's signature against its author's key; throws
 * `bad_signature` if it does not verify.
 * @param {PublicKey} pk
 * @param {SignedFields} m
 * @param {Uint8Array} sig
 */
export async function verifyMessage(pk, m, sig) {
  if (!(await verifySignature(pk, messageSignedBytes(m), sig))) {
    throw new E2eError('bad_signature', "the message's signature does not verify against its author's key");
  }
}

// ---- Safety numbers -----------------------------------------------------------

/** SHA-512 iterations, as in Signal. */
export const SAFETY_ITERATIONS = 5200;

/**
 * One party's 30 digits (libsignal's displayable fingerprint of one side):
 * `H = 0x00 0x00 || key || id`, then `iterations` times
 * `H = SHA-512(H || key)`; six 5-byte big-endian numbers mod 100000.
 * @param {Uint8Array} key
 * @param {Uint8Array} id
 * @param {number} iterations
 */
export async function safetyDigits(key, id, iterations) {
  let hash = concat(Uint8Array.of(0, 0), key, id);
  for (let i = 0; i < iterations; i++) {
    hash = new Uint8Array(await subtle().digest('SHA-512', concat(hash, key)));
  }
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + hash[i + j];
    out += String(n % 100000).padStart(5, '0');
  }
  return out;
}

/**
 * Two parties' digits in ascending order, concatenated.
 * @param {string} a
 * @param {string} b
 */
export function combineDigits(a, b) {
  return a <= b ? a + b : b + a;
}

/**
 * The safety number of two identity keys: 60 digits, the same on both
 * sides.
 * @param {PublicKey} a
 * @param {PublicKey} b
 */
export async function safetyNumber(a, b) {
  const none = new Uint8Array(0);
  const [da, db] = await Promise.all([
    safetyDigits(taggedKey(a), none, SAFETY_ITERATIONS),
    safetyDigits(taggedKey(b), none, SAFETY_ITERATIONS),
  ]);
  return combineDigits(da, db);
}

/**
 * A safety number as people read it: groups of 5 digits separated by
 * spaces.
 * @param {string} digits
 */
export function groupDigits(digits) {
  return (digits.match(/.{1,5}/g) ?? []).join(' ');
}
