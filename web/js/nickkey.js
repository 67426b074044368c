// @ts-check
// When two nicknames are the same: the rule of docs/protocol.md ("Rooms, ids
// and nicknames"), as the server applies it (crates/protocol's nick_key).
// A module of its own, so that pages load the confusables table only when
// they compare names.

import { CONFUSABLES } from './confusables.js';
import { DEFAULT_IGNORABLE } from './protocol.js';

/** @type {Map<number, string> | null} */
let prototypes = null;

/** Decodes the generated table: `DELTA:CP.CP;` per character, base 36. */
function decode() {
  /** @type {Map<number, string>} */
  const map = new Map();
  let cp = 0;
  for (const entry of CONFUSABLES.split(';')) {
    if (entry === '') continue;
    const [delta, target] = entry.split(':');
    cp += parseInt(delta, 36);
    map.set(cp, String.fromCodePoint(...target.split('.').map((p) => parseInt(p, 36))));
  }
  return map;
}

/**
 * UTS #39's confusable skeleton: NFD, default-ignorables dropped, each
 * character replaced by its prototype, NFD again.
 * @param {string} text
 */
export function skeleton(text) {
  prototypes ??= decode();
  let out = '';
  for (const ch of text.normalize('NFD')) {
    if (DEFAULT_IGNORABLE.test(ch)) continue;
    out += prototypes.get(/** @type {number} */ (ch.codePointAt(0))) ?? ch;
  }
  return out.normalize('NFD');
}

/**
 * The form of a nickname two must not share in a room: NFKC, lower case,
 * the confusable skeleton, lower case again.
 * @param {string} nick
 */
export function nickKey(nick) {
  return skeleton(nick.normalize('NFKC').toLowerCase()).toLowerCase();
}
