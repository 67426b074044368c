// @ts-check
/**
 * Keeps each room's history in IndexedDB, so it survives a reload or a
 * browser restart. Nothing leaves this device: the store is read when a room
 * opens and written as messages arrive. Where IndexedDB is unavailable
 * (a private window in some browsers), the room works without it.
 *
 * Each member keeps its own history of a room (its clear mark and the
 * delivery state of its messages are its own): a second tab in the same
 * room, which joins as another member, starts with nothing of the first
 * one's, as a terminal client sharing a history file does. Records are
 * kept under `ROOM/PEER_ID` (a room id holds no `/`).
 * @module
 */

const DB_NAME = 'peerchat';
const DB_VERSION = 1;
/** Writes wait this long to be batched with the next ones. */
const WRITE_DELAY_MS = 50;
/** Messages added before the store is trimmed to what the log keeps. */
const GROWTH_BEFORE_TRIM = 250;

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
    /** @type {string | null} the member whose history this is, once known */
    this.member = null;
    /** Messages added since the last trim. */
    this.growth = 0;
  }

  /**
   * From now on, reads and writes the history of the member with this peer
   * id (until then, records are kept under the bare room id).
   * @param {string} peerId
   */
  setMember(peerId) {
    this.member = peerId;
  }

  /**
   * The name under which this member's history of `room` is kept.
   * @param {string} room
   */
  scope(room) {
    return this.member === null ? room : `${room}/${this.member}`;
  }

  /**
   * Databases written before histories were kept per member hold a room's
   * records under the bare room id: the first member to open the room here
   * takes them over.
   * @private
   * @param {string} room
   */
  async adoptUnowned(room) {
    const scope = this.scope(room);
    if (scope === room) return;
    const tx = this.db.transaction(['messages', 'state'], 'readwrite');
    const messages = tx.objectStore('messages');
    const state = tx.objectStore('state');
    const owned = (await done(messages.index('room').count(scope))) > 0 || (await done(state.count(scope))) > 0;
    if (!owned) {
      const rows = await done(messages.index('room').getAll(room));
      if (rows.length > 0) {
        messages.delete(IDBKeyRange.bound([room], [room, []]));
        for (const row of rows) messages.put({ ...row, room: scope });
      }
      const saved = await done(state.get(room));
      if (saved) {
        state.delete(room);
        state.put({ ...saved, room: scope });
      }
    }
    await committed(tx);
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
    await this.adoptUnowned(room);
    room = this.scope(room);
    const tx = this.db.transaction(['messages', 'state'], 'readonly');
    const rows = await done(tx.objectStore('messages').index('room').getAll(room));
    const state = await done(tx.objectStore('state').get(room));
    return {
      messages: rows.map(({ author, nick, id, seq, clock, ts, text, alg, key, sig, relayed_by, kind, re }) => ({
        author,
        nick,
        id,
        seq,
        clock,
        ts,
        text,
        alg: alg ?? '',
        key: key ?? '',
        sig: sig ?? '',
        ...(relayed_by ? { relayed_by } : {}),
        // Replies, edits, deletions, reactions, room names: their kind and target.
        ...(kind ? { kind } : {}),
        ...(re ? { re } : {}),
      })),
      recipients: state?.recipients ?? [],
      acks: state?.acks ?? [],
      cleared: state?.cleared ?? 0,
    };
  }

  /**
   * The names kept by this member that start with `prefix`, without it
   * (the other parties of a room's private conversations, say, whose
   * state is saved under `prefix + PEER`).
   * @param {string} prefix
   * @returns {Promise<string[]>}
   */
  async scopesUnder(prefix) {
    await this.last;
    const suffix = this.member === null ? '' : `/${this.member}`;
    const tx = this.db.transaction(['state'], 'readonly');
    const keys = await done(tx.objectStore('state').getAllKeys(IDBKeyRange.bound(prefix, `${prefix}\uffff`)));
    return keys
      .map(String)
      .filter((k) => k.endsWith(suffix) && !k.slice(prefix.length, k.length - suffix.length).includes('/'))
      .map((k) => k.slice(prefix.length, k.length - suffix.length));
  }

  /**
   * Adds messages (written together, soon after).
   * @param {string} room
   * @param {Message[]} messages
   * @param {() => Message[]} [kept] what the log keeps now
   */
  add(room, messages, kept) {
    room = this.scope(room);
    // The log keeps a bounded number; past a quarter more, the messages it
    // dropped go from the store too, rather than at the next page load.
    this.growth += messages.length;
    if (kept && this.growth > GROWTH_BEFORE_TRIM) {
      this.growth = 0;
      this.flushScope(room);
      const keep = [...kept()];
      this.last = this.last.then(() => this.trimScope(room, keep)).catch((e) => console.warn('peerchat: could not trim history', e));
    }
    const queued = this.pending.get(room);
    if (queued) {
      queued.push(...messages);
      return;
    }
    this.pending.set(room, [...messages]);
    // One transaction for whatever arrives within a few milliseconds.
    setTimeout(() => this.flushScope(room), WRITE_DELAY_MS);
  }

  /**
   * Writes a room's waiting messages now (as the page goes away, say).
   * @param {string} room
   */
  flush(room) {
    this.flushScope(this.scope(room));
  }

  /**
   * @private
   * @param {string} room the scope: room and member
   */
  flushScope(room) {
    const batch = this.pending.get(room);
    if (!batch) return;
    this.pending.delete(room);
    this.write(['messages'], (tx) => {
      const store = tx.objectStore('messages');
      for (const m of batch) store.put({ room, ...m });
    });
  }

  /**
   * Forgets one message of a room (a relayed one found forged).
   * @param {string} room
   * @param {string} author
   * @param {number} seq
   */
  remove(room, author, seq) {
    room = this.scope(room);
    const queued = this.pending.get(room);
    if (queued) this.pending.set(room, queued.filter((m) => m.author !== author || m.seq !== seq));
    this.write(['messages'], (tx) => tx.objectStore('messages').delete([room, author, seq]));
  }

  /**
   * Saves delivery state and the clear mark.
   * @param {string} room
   * @param {Omit<Saved, 'messages'>} state
   */
  saveState(room, { recipients, acks, cleared }) {
    room = this.scope(room);
    this.write(['state'], (tx) => tx.objectStore('state').put({ room, recipients, acks, cleared }));
  }

  /**
   * Keeps only `keep` of a room's messages (the log drops the oldest).
   * @param {string} room
   * @param {Message[]} keep
   */
  async trim(room, keep) {
    await this.last;
    await this.trimScope(this.scope(room), keep);
  }

  /**
   * @private
   * @param {string} room the scope: room and member
   * @param {Message[]} keep
   */
  async trimScope(room, keep) {
    const wanted = new Set(keep.map((m) => `${m.author}\u0000${m.seq}`));
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
    room = this.scope(room);
    this.pending.delete(room);
    this.write(['messages'], (tx) => tx.objectStore('messages').delete(IDBKeyRange.bound([room], [room, []])));
  }

  /**
   * Forgets everything kept of a room, for every member of it on this
   * device: its messages and state, and those of its private
   * conversations (scopes `ROOM`, `ROOM/…` and `private:ROOM:…`). Resolves
   * once done; writes queued before are dropped, later ones come after.
   * @param {string} roomId
   * @param {string} privatePrefix the scope prefix of the room's private conversations
   * @returns {Promise<void>}
   */
  clearRoom(roomId, privatePrefix) {
    for (const scope of this.pending.keys()) {
      if (scope === roomId || scope.startsWith(`${roomId}/`) || scope.startsWith(privatePrefix)) this.pending.delete(scope);
    }
    const ranges = [
      IDBKeyRange.only(roomId),
      IDBKeyRange.bound(`${roomId}/`, `${roomId}/\uffff`),
      IDBKeyRange.bound(privatePrefix, `${privatePrefix}\uffff`),
    ];
    const cleared = this.last.then(async () => {
      const tx = this.db.transaction(['messages', 'state'], 'readwrite');
      const messages = tx.objectStore('messages');
      const state = tx.objectStore('state');
      for (const range of ranges) {
        state.delete(range);
        for (const key of await done(messages.index('room').getAllKeys(range))) messages.delete(key);
      }
      await committed(tx);
    });
    this.last = cleared.catch((e) => console.warn('peerchat: could not clear history', e));
    return cleared;
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
