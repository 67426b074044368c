// @ts-check
/**
 * Keeps this browser's identity key and its pins (trust on first use) in
 * IndexedDB, in a database of their own (`peerchat-keys`), apart from the
 * history.
 *
 * - One identity per browser profile, for every room and tab: an Ed25519
 *   (or ECDSA P-256) key pair made by WebCrypto, its private key not
 *   extractable: IndexedDB keeps the key object, and nothing, not even this
 *   page, can read its bytes. Clearing the site's data makes a new one.
 * - Pins: per room and nickname (in {@link pinName} form), the identity key
 *   first seen, and whether the user marked it verified after comparing
 *   safety numbers. A nickname coming back with another key is "changed":
 *   the caller shows it, then {@link KeyStore#replacePin} replaces the pin
 *   and resets the verified mark.
 * @module
 */

import { generateIdentity, pinName, publicKey, requireSecureContext } from './e2e.js';
import { committed, done } from './store.js';

const DB_NAME = 'peerchat-keys';
const DB_VERSION = 1;
const IDENTITY = 'default';

/**
 * @typedef {import('./e2e.js').Identity} Identity
 * @typedef {import('./e2e.js').PublicKey} PublicKey
 * @typedef {{key: PublicKey, verified: boolean, since: number}} Pin
 *   a pinned key, whether it was verified, and when it was first seen (ms)
 * @typedef {{status: 'new' | 'same', pin: Pin} | {status: 'changed', pin: Pin, seen: PublicKey}} PinCheck
 *   what {@link KeyStore#check} found: a key seen for the first time (now
 *   pinned), the pinned key again, or another key than the pinned one
 *   (the pin is left as it was)
 */

/**
 * @param {PublicKey} a
 * @param {PublicKey} b
 */
function sameKey(a, b) {
  return a.alg === b.alg && a.key.length === b.key.length && a.key.every((byte, i) => byte === b.key[i]);
}

/**
 * @param {{alg: string, key: Uint8Array, verified: boolean, since: number}} row
 * @returns {Pin}
 */
function pinOf(row) {
  return { key: publicKey(row.alg, row.key), verified: row.verified, since: row.since };
}

export class KeyStore {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
  }

  /**
   * Opens the key store, or resolves to null where this browser has no
   * IndexedDB (then an identity lasts as long as the page, and others see
   * a changed safety number next time). Throws where the page is not a
   * secure context: there is no WebCrypto there either.
   * @returns {Promise<KeyStore | null>}
   */
  static async open() {
    requireSecureContext();
    if (typeof indexedDB === 'undefined') return null;
    try {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore('identity', { keyPath: 'name' });
        db.createObjectStore('pins', { keyPath: ['room', 'name'] });
      };
      return new KeyStore(await done(request));
    } catch (e) {
      console.warn('peerchat: identity and pins will not be kept on this device', e);
      return null;
    }
  }

  /**
   * This browser's identity: the one kept, or a new one (kept from now
   * on). Tabs that make one at the same moment all end up with the same
   * (the first one written).
   * @returns {Promise<Identity>}
   */
  async identity() {
    const kept = await this.readIdentity();
    if (kept) return kept;
    const made = await generateIdentity();
    const tx = this.db.transaction(['identity'], 'readwrite');
    const row = {
      name: IDENTITY,
      alg: made.alg,
      privateKey: made.privateKey,
      key: made.publicKey.key,
      created: Date.now(),
    };
    // `add` fails if another tab wrote one first: then that one is ours.
    const added = done(tx.objectStore('identity').add(row)).then(
      () => true,
      () => false,
    );
    await committed(tx).catch(() => {});
    if (await added) return made;
    const theirs = await this.readIdentity();
    if (!theirs) throw new Error('peerchat: the identity key could not be kept');
    return theirs;
  }

  /** @returns {Promise<Identity | null>} */
  async readIdentity() {
    const tx = this.db.transaction(['identity'], 'readonly');
    const row = await done(tx.objectStore('identity').get(IDENTITY));
    if (!row) return null;
    return { alg: row.alg, privateKey: row.privateKey, publicKey: publicKey(row.alg, row.key) };
  }

  /**
   * The pin of a nickname in a room, if any.
   * @param {string} room
   * @param {string} nick
   * @returns {Promise<Pin | null>}
   */
  async pin(room, nick) {
    const tx = this.db.transaction(['pins'], 'readonly');
    const row = await done(tx.objectStore('pins').get([room, pinName(nick)]));
    return row ? pinOf(row) : null;
  }

  /**
   * Checks the key a nickname presents in a room against its pin, pinning
   * it if the nickname has none.
   * @param {string} room
   * @param {string} nick
   * @param {PublicKey} key
   * @returns {Promise<PinCheck>}
   */
  async check(room, nick, key) {
    const tx = this.db.transaction(['pins'], 'readwrite');
    const pins = tx.objectStore('pins');
    const name = pinName(nick);
    const row = await done(pins.get([room, name]));
    /** @type {PinCheck} */
    let result;
    if (!row) {
      const pin = { key, verified: false, since: Date.now() };
      pins.put({ room, name, alg: key.alg, key: key.key, verified: false, since: pin.since });
      result = { status: 'new', pin };
    } else {
      const pin = pinOf(row);
      result = sameKey(pin.key, key) ? { status: 'same', pin } : { status: 'changed', pin, seen: key };
    }
    await committed(tx);
    return result;
  }

  /**
   * Replaces a nickname's pin with the key it now presents (once the user
   * has been shown that it changed); the verified mark is reset.
   * @param {string} room
   * @param {string} nick
   * @param {PublicKey} key
   */
  async replacePin(room, nick, key) {
    const tx = this.db.transaction(['pins'], 'readwrite');
    const row = { room, name: pinName(nick), alg: key.alg, key: key.key, verified: false, since: Date.now() };
    tx.objectStore('pins').put(row);
    await committed(tx);
  }

  /**
   * Pins the key of `old` in a room for `renamed` as well, with its
   * verified mark, if it is `key` (a member took a new nickname over a
   * connection whose hello showed that key). Resolves to whether it did.
   * @param {string} room
   * @param {string} old
   * @param {string} renamed
   * @param {PublicKey} key
   */
  async carryPin(room, old, renamed, key) {
    const tx = this.db.transaction(['pins'], 'readwrite');
    const pins = tx.objectStore('pins');
    const row = await done(pins.get([room, pinName(old)]));
    const matches = Boolean(row) && sameKey(pinOf(row).key, key);
    if (matches) pins.put({ ...row, name: pinName(renamed) });
    await committed(tx);
    return matches;
  }

  /**
   * Marks (or unmarks) a nickname's pinned key as verified, if the pin is
   * still this key. Resolves to whether it did.
   * @param {string} room
   * @param {string} nick
   * @param {PublicKey} key
   * @param {boolean} [verified]
   */
  async setVerified(room, nick, key, verified = true) {
    const tx = this.db.transaction(['pins'], 'readwrite');
    const pins = tx.objectStore('pins');
    const row = await done(pins.get([room, pinName(nick)]));
    const matches = Boolean(row) && sameKey(pinOf(row).key, key);
    if (matches) pins.put({ ...row, verified });
    await committed(tx);
    return matches;
  }
}
