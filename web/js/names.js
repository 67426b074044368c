// @ts-check
/**
 * How people are told apart on the page: each member has a colour chosen
 * by peer id (not by nickname, so two people with look-alike names do not
 * share one), and names that look alike get a short id tag.
 * @module
 */

/** How many name colours the palette has (`--name-0` … in style.css). */
export const NAME_COLOURS = 12;

/**
 * The palette index for a peer id: FNV-1a over its characters.
 * @param {string} peerId
 */
export function colourOf(peerId) {
  let h = 0x811c9dc5;
  for (let i = 0; i < peerId.length; i += 1) {
    h ^= peerId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % NAME_COLOURS;
}

/** Letters of other scripts that look like Latin ones. */
const LOOK_ALIKES = new Map(
  Object.entries({
    а: 'a', в: 'b', е: 'e', ё: 'e', з: '3', і: 'i', ї: 'i', ј: 'j', к: 'k', м: 'm', н: 'h', о: 'o',
    п: 'n', р: 'p', с: 'c', т: 't', у: 'y', х: 'x', ѕ: 's', ԁ: 'd', ԛ: 'q', ԝ: 'w', ɡ: 'g',
    α: 'a', β: 'b', ε: 'e', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x',
    ı: 'i', ℓ: 'l', '0': 'o', '1': 'l', '|': 'l',
  }),
);

/**
 * What a name looks like, roughly: compatibility forms folded, marks,
 * invisible characters and white space dropped, case folded, and common
 * look-alike letters of other scripts taken as Latin. Two names with the
 * same form may be mistaken for each other.
 * @param {string} nick
 */
export function lookOf(nick) {
  const folded = nick
    .normalize('NFKD')
    .replace(/[\p{M}\p{Default_Ignorable_Code_Point}\s]/gu, '')
    .toLowerCase();
  let out = '';
  for (const ch of folded) out += LOOK_ALIKES.get(ch) ?? ch;
  return out;
}

/**
 * The tag that tells a member apart: `#` and the first 4 digits of its id.
 * @param {string} peerId
 */
export function shortTag(peerId) {
  return `#${peerId.slice(0, 4)}`;
}

/**
 * The names on the page (members and authors of shown messages), to find
 * those that look alike. Bounded: at most `limit` ids are tracked, the
 * longest unseen going first.
 */
export class Names {
  /** @param {number} [limit] */
  constructor(limit = 2048) {
    this.limit = limit;
    /** @type {Map<string, string>} nickname by peer id, least recently seen first */
    this.nicks = new Map();
    /** @type {Map<string, Set<string>>} peer ids by the look of their name */
    this.byLook = new Map();
  }

  /**
   * Records that `peerId` goes by `nick`; returns whether the set of names
   * that look alike changed (tags shown elsewhere need redrawing).
   * @param {string} peerId
   * @param {string} nick
   */
  see(peerId, nick) {
    const known = this.nicks.get(peerId);
    this.nicks.delete(peerId);
    this.nicks.set(peerId, nick);
    if (known === nick) return false;
    let changed = false;
    if (known !== undefined) changed = this.unlink(peerId, known);
    const look = lookOf(nick);
    const ids = this.byLook.get(look) ?? new Set();
    ids.add(peerId);
    this.byLook.set(look, ids);
    if (ids.size > 1) changed = true;
    while (this.nicks.size > this.limit) {
      const [oldest, name] = /** @type {[string, string]} */ (this.nicks.entries().next().value);
      this.nicks.delete(oldest);
      if (this.unlink(oldest, name)) changed = true;
    }
    return changed;
  }

  /**
   * The tag to show after `peerId`'s name: empty unless another id's name
   * looks the same.
   * @param {string} peerId
   * @param {string} nick
   */
  tag(peerId, nick) {
    const ids = this.byLook.get(lookOf(nick));
    return ids && (ids.size > 1 || !ids.has(peerId)) ? shortTag(peerId) : '';
  }

  /**
   * @private
   * @param {string} peerId
   * @param {string} nick
   */
  unlink(peerId, nick) {
    const look = lookOf(nick);
    const ids = this.byLook.get(look);
    if (!ids) return false;
    const was = ids.size;
    ids.delete(peerId);
    if (ids.size === 0) this.byLook.delete(look);
    return was > 1;
  }
}
