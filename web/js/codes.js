// @ts-check
/**
 * Connection codes for connecting without a server: an offer or answer,
 * with every ICE candidate inside, as one line of text. `peerchat2.`
 * followed by the base64url (no padding) of the raw-DEFLATE-compressed
 * JSON `{"v":2,"type":"offer"|"answer","secret"?:…,"iv":…,"ct":…}`: the
 * offer or answer (`{"type","sid","nick","sdp"}`) sealed like a room's
 * signals, in the `code` context, from `offerer` to `answerer` or back. The
 * offer code carries a fresh secret in the clear; the answer is sealed with
 * it, so that nobody who did not see the offer code can make or alter the
 * answer. The terminal client (`peerchat chat --manual`) reads and writes
 * the same codes (see docs/protocol.md).
 * @module
 */

import { base64urlDecode, base64urlEncode, parseSecret, plaintext } from './e2e.js';
import { validateNick } from './protocol.js';

export const CODE_PREFIX = 'peerchat2.';
const MAX_CODE = 64 * 1024;
/** The two sides' peer ids, which codes are sealed from and to. */
export const OFFERER = 'offerer';
export const ANSWERER = 'answerer';

/**
 * @typedef {{type: 'offer' | 'answer', sid: string, nick: string, sdp: string}} Blob
 *   what a code holds, once opened
 * @typedef {{type: 'offer' | 'answer', secret: Uint8Array | null, sealed: {iv: string, ct: string}}} Code
 *   a code as read, before it is opened
 */

/**
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @param {CompressionStream | DecompressionStream} transform
 */
async function pipe(bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * @param {'offer' | 'answer'} type
 * @returns {[string, string]} who seals a code of this type, and for whom
 */
function ends(type) {
  return type === 'offer' ? [OFFERER, ANSWERER] : [ANSWERER, OFFERER];
}

/**
 * Seals a blob into a code, with `key` (the exchange's signal key) and,
 * for an offer whose secret was not shared ahead, the secret in the clear.
 * @param {Blob} blob
 * @param {import('./e2e.js').SignalKey} key
 * @param {string | null} secret the secret's fragment form, to carry
 */
export async function sealCode(blob, key, secret) {
  const [from, to] = ends(blob.type);
  const stamp = { e: base64urlEncode(crypto.getRandomValues(new Uint8Array(16))), n: 1, ts: Date.now() };
  const { type, sid, nick, sdp } = blob;
  const sealed = await key.seal(crypto.getRandomValues(new Uint8Array(12)), from, to, plaintext({ type, sid, nick, sdp }, stamp));
  const code = { v: 2, type, ...(secret ? { secret } : {}), iv: sealed.iv, ct: sealed.ct };
  const json = new TextEncoder().encode(JSON.stringify(code));
  return CODE_PREFIX + base64urlEncode(await pipe(json, new CompressionStream('deflate-raw')));
}

/**
 * Reads a code (white space anywhere is ignored) and checks it is of the
 * expected type; throws an Error with a message for people.
 * @param {string} text
 * @param {'offer' | 'answer'} expected
 * @returns {Promise<Code>}
 */
export async function readCode(text, expected) {
  const compact = text.replace(/\s+/g, '');
  if (!compact.startsWith(CODE_PREFIX)) {
    throw new Error(`This is not a peerchat connection code (it should start with ${CODE_PREFIX}).`);
  }
  const damaged = () => new Error('This connection code is damaged. Was all of it copied?');
  /** @type {any} */
  let code;
  try {
    if (compact.length > MAX_CODE) throw new Error('too long');
    const packed = base64urlDecode(compact.slice(CODE_PREFIX.length));
    if (!packed) throw new Error('not base64url');
    const json = await pipe(packed, new DecompressionStream('deflate-raw'));
    if (json.length > 4 * MAX_CODE) throw new Error('too long');
    code = JSON.parse(new TextDecoder().decode(json));
  } catch {
    throw damaged();
  }
  if (
    typeof code !== 'object' || code === null || (code.type !== 'offer' && code.type !== 'answer') ||
    typeof code.iv !== 'string' || typeof code.ct !== 'string'
  ) {
    throw damaged();
  }
  let secret = null;
  if (code.secret !== undefined && code.secret !== null) {
    if (code.type !== 'offer' || typeof code.secret !== 'string') throw damaged();
    try {
      secret = parseSecret(code.secret);
    } catch {
      throw damaged();
    }
  }
  if (code.type !== expected) throw new Error(`This is an ${code.type} code, but an ${expected} code is needed here.`);
  return { type: code.type, secret, sealed: { iv: code.iv, ct: code.ct } };
}

/**
 * Opens a code with the exchange's key; throws an Error with a message for
 * people if it does not belong to this exchange.
 * @param {Code} code
 * @param {import('./e2e.js').SignalKey} key
 * @returns {Promise<Blob>}
 */
export async function openCode(code, key) {
  const [from, to] = ends(code.type);
  /** @type {any} */
  let blob;
  try {
    blob = (await key.openPayload(from, to, code.sealed)).payload;
  } catch {
    throw new Error('This code does not belong to this exchange: it was altered, or made for another offer.');
  }
  if (blob.type !== code.type || typeof blob.sdp !== 'string' || typeof blob.sid !== 'string' || typeof blob.nick !== 'string') {
    throw new Error('This connection code is damaged. Was all of it copied?');
  }
  try {
    validateNick(blob.nick);
  } catch {
    throw new Error('This connection code carries a nickname that is not allowed.');
  }
  return { type: blob.type, sid: blob.sid, nick: blob.nick, sdp: blob.sdp };
}
