// @ts-check
/**
 * Keeps each room's history in IndexedDB, so it survives a reload or a
 * browser restart. Nothing leaves this device: the store is read when a room
 * opens and written as messages arrive. Where IndexedDB is unavailable
 * (a private window in some browsers), the room works without it.
 * @module
 */

const DB_NAME = 'peerchat';
const DB_VERSION = 1;
/** Writes wait this long to be batched with the next ones. */
const WRITE_DELAY_MS = 50;

/**
 * @typedef {import('./history.js').Message} Message
 * @typedef {import('./history.js').Saved} Saved
 */

/**
 * Resolves with a request's result once it succeeds.
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
export function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Resolves once a transaction has committed.
 * @param {IDBTransaction} tx
 * @returns {Promise<void>}
 */
export function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export class Store {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
    /** @type {Map<string, Message[]>} messages waiting to be written, per room */
    this.pending = new Map();
    /** @type {Promise<void>} the last write, so that reads and clears come after it */
    this.last = Promise.resolve();
  }

  /**
   * Opens the database, or resolves to null if this browser has none.
   * @returns {Promise<Store | null>}
   */
  static async open() {
    if (typeof indexedDB === 'undefined') return null;
    try {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        const messages = db.createObjectStore('messages', { keyPath: ['room', 'author', 'seq'] });
        messages.createIndex('room', 'room');
        db.createObjectStore('state', { keyPath: 'room' });
      };
      return new Store(await done(request));
    } catch (e) {
      console.warn('peerchat: history will not be kept on this device', e);
      return null;
    }
  }

  /**
   * Everything kept for a room.
   * @param {string} room
   * @returns {Promise<Saved>}
   */
  async load(room) {
    await this.last;
    const tx = this.db.transaction(['messages', 'state'], 'readonly');
    const rows = await done(tx.objectStore('messages').index('room').getAll(room));
    const state = await done(tx.objectStore('state').get(room));
    return {
      messages: rows.map(({ author, nick, id, seq, clock, ts, text }) => ({ author, nick, id, seq, clock, ts, text })),
      recipients: state?.recipients ?? [],
      acks: state?.acks ?? [],
      cleared: state?.cleared ?? 0,
    };
  }

  /**
   * Adds messages (written together, soon after).
   * @param {string} room
   * @param {Message[]} messages
   */
  add(room, messages) {
    const queued = this.pending.get(room);
    if (queued) {
      queued.push(...messages);
      return;
    }
    this.pending.set(room, [...messages]);
    // One transaction for whatever arrives within a few milliseconds.
    setTimeout(() => this.flush(room), WRITE_DELAY_MS);
  }

  /**
   * Writes a room's waiting messages now (as the page goes away, say).
   * @param {string} room
   */
  flush(room) {
    const batch = this.pending.get(room);
    if (!batch) return;
    this.pending.delete(room);
    this.write(['messages'], (tx) => {
      const store = tx.objectStore('messages');
      for (const m of batch) store.put({ room, ...m });
    });
  }

  /**
   * Saves delivery state and the clear mark.
   * @param {string} room
   * @param {Omit<Saved, 'messages'>} state
   */
  saveState(room, { recipients, acks, cleared }) {
    this.write(['state'], (tx) => tx.objectStore('state').put({ room, recipients, acks, cleared }));
  }

  /**
   * Keeps only `keep` of a room's messages (the log drops the oldest).
   * @param {string} room
   * @param {Message[]} keep
   */
  async trim(room, keep) {
    const wanted = new Set(keep.map((m) => `${m.author}\u0000${m.seq}`));
    await this.last;
    const tx = this.db.transaction(['messages'], 'readwrite');
    const store = tx.objectStore('messages');
    const keys = /** @type {[string, string, number][]} */ (await done(store.index('room').getAllKeys(room)));
    for (const key of keys) if (!wanted.has(`${key[1]}\u0000${key[2]}`)) store.delete(key);
    await committed(tx);
  }

  /**
   * Forgets a room's messages; the state (with its clear mark) is saved
   * separately.
   * @param {string} room
   */
  clear(room) {
    this.pending.delete(room);
    this.write(['messages'], (tx) => tx.objectStore('messages').delete(IDBKeyRange.bound([room], [room, []])));
  }

  /**
   * @private
   * @param {string[]} stores
   * @param {(tx: IDBTransaction) => void} fill
   */
  write(stores, fill) {
    this.last = this.last
      .then(() => {
        const tx = this.db.transaction(stores, 'readwrite');
        fill(tx);
        return committed(tx);
      })
      .catch((e) => console.warn('peerchat: could not save history', e));
  }
}
