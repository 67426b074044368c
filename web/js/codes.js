// @ts-check
/**
 * Connection codes for connecting without a server: an offer or answer,
 * with every ICE candidate inside, as one line of text. `peerchat1.`
 * followed by the base64url (no padding) of the raw-DEFLATE-compressed JSON
 * `{"v":1,"type":"offer"|"answer","sdp":…,"sid":…,"nick":…}`; the terminal
 * client (`peerchat chat --manual`) reads and writes the same codes.
 * @module
 */

import { validateNick } from './protocol.js';

export const CODE_PREFIX = 'peerchat1.';
const MAX_CODE = 64 * 1024;

/** @typedef {{v: number, type: 'offer' | 'answer', sdp: string, sid: string, nick: string}} Code */

/** @param {Uint8Array} bytes */
function toBase64Url(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** @param {string} text */
function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @param {CompressionStream | DecompressionStream} transform
 */
async function pipe(bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** @param {Code} code */
export async function encodeCode(code) {
  const json = new TextEncoder().encode(JSON.stringify(code));
  return CODE_PREFIX + toBase64Url(await pipe(json, new CompressionStream('deflate-raw')));
}

/**
 * Reads a code (white space anywhere is ignored) and checks it is of the
 * expected type; throws an Error with a message for people.
 * @param {string} text
 * @param {'offer' | 'answer'} expected
 * @returns {Promise<Code>}
 */
export async function decodeCode(text, expected) {
  const compact = text.replace(/\s+/g, '');
  if (!compact.startsWith(CODE_PREFIX)) {
    throw new Error(`This is not a peerchat connection code (it should start with ${CODE_PREFIX}).`);
  }
  /** @type {any} */
  let code;
  try {
    if (compact.length > MAX_CODE) throw new Error('too long');
    const json = await pipe(fromBase64Url(compact.slice(CODE_PREFIX.length)), new DecompressionStream('deflate-raw'));
    if (json.length > 4 * MAX_CODE) throw new Error('too long');
    code = JSON.parse(new TextDecoder().decode(json));
  } catch {
    throw new Error('This connection code is damaged. Was all of it copied?');
  }
  if (
    typeof code !== 'object' || code === null || typeof code.sdp !== 'string' ||
    typeof code.sid !== 'string' || typeof code.nick !== 'string' || (code.type !== 'offer' && code.type !== 'answer')
  ) {
    throw new Error('This connection code is damaged. Was all of it copied?');
  }
  try {
    validateNick(code.nick);
  } catch {
    throw new Error('This connection code carries a nickname that is not allowed.');
  }
  if (code.type !== expected) throw new Error(`This is an ${code.type} code, but an ${expected} code is needed here.`);
  return code;
}
