// @ts-check
/**
 * Files in a room: the driver of transfer.js's machines. It offers files
 * (hashed piece by piece with `File.slice`, the offer signed as a log
 * entry of the room or of a private conversation), fetches the files
 * offered to us (a {@link Receiver} per file, on `file` data channels of
 * their own, pieces written to the Origin Private File System by a worker
 * as they arrive, progress kept in localStorage so that a reload resumes),
 * and serves the files it holds whole (a {@link Sender} per `file` channel
 * opened to it, with `bufferedAmountLowThreshold` back-pressure). No DOM:
 * the page renders what it emits.
 *
 * Events (on this object): `transfer` (detail: {fid}) a transfer's state
 * or progress changed.
 * @module
 */

import {
  controlJson,
  digestBlob,
  hex,
  LABEL,
  MAX_SERVING,
  MAX_SERVING_PER_PEER,
  offerOf,
  parseControl,
  PieceParts,
  pieceLen,
  Receiver,
  Sender,
  showsAsImage,
  SNIFF_BYTES,
} from './transfer.js';
import { randomId } from './protocol.js';

/**
 * @typedef {import('./protocol.js').FileMeta} FileMeta
 * @typedef {import('./room.js').Room} Room
 * @typedef {import('./transfer.js').ReceiverAction} ReceiverAction
 * @typedef {import('./transfer.js').ReceiverState} ReceiverState
 * @typedef {import('./transfer.js').SenderAction} SenderAction
 * @typedef {{meta: FileMeta, party: string | null, blob: () => Promise<Blob>, list: Uint8Array[] | null}} Held
 *   a file we can serve: `party` the other member of a private offer (only
 *   it may fetch it), null for the room's
 * @typedef {{meta: FileMeta, author: string, party: string | null, receiver: Receiver,
 *   channels: Map<string, RTCDataChannel>, timer: ReturnType<typeof setTimeout> | undefined, due: number | null,
 *   saving: ReturnType<typeof setTimeout> | undefined,
 *   rate: {at: number, bytes: number, perSecond: number}, preview: boolean | null, writes: Promise<unknown>,
 *   batch: {offset: number, bytes: Uint8Array, len: number} | null, wholes: {offset: number, len: number}[]}} Fetch
 *   `batch`: parts received, gathered for one write; `wholes`: what the
 *   worker is to hash for the whole file once that write is asked for
 * @typedef {{peer: string, fid: string, channel: RTCDataChannel, sender: Sender | null,
 *   timer: ReturnType<typeof setTimeout> | undefined, due: number | null, reads: Promise<unknown>,
 *   ahead: Map<number, Promise<Read>>}} Serving
 *   `ahead`: the reads begun of the pieces asked for next, by offset
 * @typedef {{bytes: Uint8Array, digest: Uint8Array}} Read
 */

/**
 * How much a transfer channel holds before its sender waits: Chromium
 * sends the messages of all the channels of a connection in the order they
 * were handed over, so a chat message waits behind what the file channels
 * hold; at the few MiB/s a connection carries on a busy machine, 1 MiB is a
 * quarter of a second. Less keeps chat quick and the link as busy.
 */
const SENDER_CONFIG = { highWater: 256 * 1024, lowWater: 64 * 1024 };
/**
 * How much a receiver asks for at a time from one holder (the protocol's
 * most is 4 MiB), counting what it received and has not written yet: it
 * must cover what arrives while a request goes to the holder and while a
 * write (up to {@link WRITE_BATCH}) is done, or the link waits (512 KiB,
 * two pieces, left it idle most of the time on the bench machine). More
 * holds chat messages behind file data in the receiving page's queue:
 * 4 MiB took the chat p95 past 100 ms there, 2 MiB kept it near 70 ms at
 * the same throughput.
 */
const RECEIVER_WINDOW = 2048 * 1024;

/** Most bytes of a file we serve read at a time (see `readAhead`). */
const READ_BLOCK = 1024 * 1024;
/** Most bytes of a received file gathered for one write (see `gather`). */
const WRITE_BATCH = 1024 * 1024;

/**
 * How often the page hears of a transfer's progress at most: each data
 * message changes it, and drawing it each time kept both pages' threads
 * busy (the card, the layout, the compositor) for nothing anyone can read.
 */
const PROGRESS_MS = 200;
/**
 * How often at most a transfer's progress is kept on the device while it
 * runs (`localStorage` is synchronous; once per piece cost the receiving
 * page more than a millisecond each). A reload loses at most that much:
 * what was kept is read back and checked before it counts anyway.
 */
const KEEP_MS = 1000;

/**
 * Arms `t`'s timer to call `fire` at `due` (null: nothing due). A timer
 * already set no later is left alone: the machines' deadlines move with
 * every message, and their `handleTimeout` does nothing before one is
 * reached, so an early call only arms the next.
 * @param {{timer: ReturnType<typeof setTimeout> | undefined, due: number | null}} t
 * @param {number | null} due
 * @param {() => void} fire
 */
function arm(t, due, fire) {
  if (due !== null && t.due !== null && t.due <= due) return;
  clearTimeout(t.timer);
  t.timer = undefined;
  t.due = due;
  if (due === null) return;
  t.timer = setTimeout(() => {
    t.timer = undefined;
    t.due = null;
    fire();
  }, Math.max(0, due - Date.now()));
}

/**
 * Whether a receiver asked for bytes that have not arrived.
 * @param {Receiver} receiver
 */
function onItsWay(receiver) {
  for (const source of receiver.sources.values()) if (source.outstanding > 0) return true;
  return false;
}

/** Where a transfer's progress is kept between page loads. */
const SAVED_PREFIX = 'peerchat.file.';

/** The worker that writes and reads received files (OPFS). */
class Disk {
  constructor() {
    this.worker = new Worker('/opfs-worker.js', { type: 'module' });
    this.next = 1;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: Error) => void}>} */
    this.waiting = new Map();
    this.worker.addEventListener('message', (event) => {
      const { id, ok, value, error } = event.data;
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      if (ok) w?.resolve(value);
      else w?.reject(new Error(error));
    });
  }

  /**
   * @param {{op: string, name: string, offset?: number, len?: number, data?: Uint8Array}} req
   * @returns {Promise<any>}
   */
  ask(req) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...req }, req.data ? [req.data.buffer] : []);
    });
  }

  /**
   * A received file as a Blob (read from disk as it is used).
   * @param {string} name
   */
  async file(name) {
    await this.ask({ op: 'close', name });
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('peerchat-files', { create: true });
    return (await dir.getFileHandle(name, { create: true })).getFile();
  }
}

export class Files extends EventTarget {
  /**
   * @param {Room} room
   * @param {{autoAccept?: number}} [options]
   */
  constructor(room, { autoAccept } = {}) {
    super();
    this.room = room;
    this.autoAccept = autoAccept;
    /** @type {Disk | null} */
    this.disk = null;
    /** @type {Map<string, Held>} files we hold whole, by fid */
    this.held = new Map();
    /** @type {Map<string, Fetch>} files we fetch (or fetched), by fid */
    this.fetches = new Map();
    /** @type {Set<Serving>} */
    this.serving = new Set();
    /** @type {Map<string, Map<string, number>>} bytes each member has of our offers, by fid */
    this.sent = new Map();
    /** @type {Map<string, string>} the object URLs made, by fid */
    this.urls = new Map();
    /** @type {Map<string, ReturnType<typeof setTimeout>>} progress to tell, by fid */
    this.progressing = new Map();
    /** Test hook: corrupt the next piece received (a byte flipped). */
    this.corruptNext = false;
    /** @type {WeakSet<Fetch>} fetches stopped by a clear: what they still get is dropped */
    this.dropped = new WeakSet();
    // Leaving the page (a reload, a closed tab) keeps where every transfer
    // stands; while it runs, that is kept at most once a second (KEEP_MS).
    globalThis.addEventListener?.('pagehide', () => {
      for (const fetch of this.fetches.values()) this.keepRunning(fetch);
    });
  }

  /**
   * Forgets the files received in this room on this device: transfers
   * under way stop, and the files (whole or in part) and their progress go
   * from the disk (OPFS) and localStorage, for every member of the room
   * here. Our own offers, held in memory only, can still be served.
   * @returns {Promise<void>} once the files are gone from the disk
   */
  async clearAll() {
    const fids = new Set(this.fetches.keys());
    for (const [fid, fetch] of this.fetches) {
      this.dropped.add(fetch);
      clearTimeout(fetch.timer);
      for (const ch of fetch.channels.values()) ch.close();
      fetch.channels.clear();
      this.held.delete(fid);
      const url = this.urls.get(fid);
      if (url) URL.revokeObjectURL(url);
      this.urls.delete(fid);
    }
    this.fetches.clear();
    // Progress kept as `peerchat.file.ROOM.MEMBER.FID`.
    const prefix = `${SAVED_PREFIX}${this.room.roomId}.`;
    try {
      for (let i = localStorage.length - 1; i >= 0; i -= 1) {
        const key = localStorage.key(i);
        if (!key?.startsWith(prefix)) continue;
        fids.add(key.slice(key.lastIndexOf('.') + 1));
        localStorage.removeItem(key);
      }
    } catch {
      // Storage off: only the fetches of this page are known.
    }
    if (fids.size === 0) return;
    const disk = this.diskOf();
    await Promise.all([...fids].map((fid) => disk.ask({ op: 'remove', name: fid })));
  }

  /** @private */
  diskOf() {
    this.disk ??= new Disk();
    return this.disk;
  }

  /**
   * Offers `file` to the room (`to` null) or to one member: hashes it piece
   * by piece, then signs and sends the offer.
   * @param {File} file
   * @param {string | null} to
   * @param {(done: number) => void} [progress]
   * @returns {Promise<import('./room.js').ChatMessage>}
   */
  async offer(file, to, progress) {
    const { digests, type } = await digestBlob(file, progress);
    const meta = offerOf(digests, { fid: randomId(), name: file.name || 'file', type });
    this.held.set(meta.fid, { meta, party: to, blob: async () => file, list: digests.pieces });
    this.sent.set(meta.fid, new Map());
    const privates = this.room.privates;
    if (to !== null && !privates) throw new Error('private conversations are not ready');
    return to === null ? this.room.sendFile(meta) : /** @type {import('./privates.js').PrivateChats} */ (privates).sendFile(to, meta);
  }

  /**
   * A file offer was added to the room's log (`party` null) or to the
   * conversation with `party`: we fetch it (or, ours, serve it).
   * @param {string | null} party
   * @param {{authorId: string, own: boolean, file?: FileMeta}} msg
   */
  offered(party, msg) {
    const meta = msg.file;
    if (!meta || msg.own || this.fetches.has(meta.fid)) return;
    /** @type {import('./transfer.js').Saved | undefined} */
    let saved;
    let complete = false;
    try {
      const kept = JSON.parse(localStorage.getItem(this.savedKey(meta.fid)) ?? 'null');
      if (kept && kept.sha256 === meta.sha256) {
        saved = kept.saved;
        complete = kept.complete === true;
      }
    } catch {
      // Nothing kept: start afresh.
    }
    // Pieces are hashed with WebCrypto as they complete (see openChannel).
    const base = { window: RECEIVER_WINDOW, nativeDigests: true };
    const config = this.autoAccept === undefined ? base : { ...base, autoAccept: this.autoAccept };
    const receiver = new Receiver(meta, msg.authorId, config, saved);
    /** @type {Fetch} */
    const fetch = {
      meta,
      author: msg.authorId,
      party,
      receiver,
      channels: new Map(),
      timer: undefined,
      due: null,
      saving: undefined,
      rate: { at: Date.now(), bytes: receiver.progress().bytes, perSecond: 0 },
      preview: null,
      writes: Promise.resolve(),
      batch: null,
      wholes: [],
    };
    this.fetches.set(meta.fid, fetch);
    if (complete) {
      receiver.state = 'complete';
      this.hold(fetch);
      this.changed(meta.fid);
      return;
    }
    this.carry(fetch, receiver.start(Date.now()));
    for (const member of this.room.members.values()) {
      if (member.up && this.mayAsk(fetch, member.id)) this.carry(fetch, receiver.peerUp(member.id, Date.now()));
    }
  }

  /**
   * @private
   * @param {Fetch} fetch
   * @param {string} peer
   */
  mayAsk(fetch, peer) {
    return fetch.party === null || fetch.party === peer;
  }

  /** @param {string} fid */
  accept(fid) {
    const fetch = this.fetches.get(fid);
    if (fetch) this.carry(fetch, fetch.receiver.accept(Date.now()));
  }

  /**
   * Stops fetching a file, or (ours) stops serving it to everyone.
   * @param {string} fid
   */
  cancel(fid) {
    const fetch = this.fetches.get(fid);
    if (fetch) this.carry(fetch, fetch.receiver.cancel(Date.now()));
    if (this.sent.has(fid)) {
      this.held.delete(fid);
      for (const s of [...this.serving]) if (s.fid === fid && s.sender) this.serve(s, s.sender.cancel(Date.now()));
      this.changed(fid);
    }
  }

  /**
   * A member's chat channel is up (its hello verified): it may be asked.
   * @param {string} peer
   */
  peerUp(peer) {
    for (const fetch of this.fetches.values()) {
      if (this.mayAsk(fetch, peer)) this.carry(fetch, fetch.receiver.peerUp(peer, Date.now()));
    }
  }

  /** @param {string} peer */
  peerDown(peer) {
    for (const fetch of this.fetches.values()) this.carry(fetch, fetch.receiver.peerDown(peer, Date.now()));
  }

  /**
   * Where a transfer stands, for the page.
   * @param {string} fid
   */
  status(fid) {
    const fetch = this.fetches.get(fid);
    if (fetch) {
      const { bytes, size } = fetch.receiver.progress();
      return { kind: /** @type {const} */ ('in'), state: fetch.receiver.state, bytes, size, rate: fetch.rate.perSecond, preview: fetch.preview };
    }
    const sent = this.sent.get(fid);
    if (sent) {
      const held = this.held.get(fid);
      return { kind: /** @type {const} */ ('out'), held: held !== undefined, members: [...sent].map(([peer, bytes]) => ({ peer, bytes })) };
    }
    return null;
  }

  /**
   * The received file (complete and checked), or our own, as a Blob.
   * @param {string} fid
   * @returns {Promise<Blob | null>}
   */
  async blob(fid) {
    const held = this.held.get(fid);
    return held ? held.blob() : null;
  }

  /**
   * An object URL of a file held whole, made once.
   * @param {string} fid
   */
  async url(fid) {
    const made = this.urls.get(fid);
    if (made) return made;
    const held = this.held.get(fid);
    const blob = held ? await held.blob() : null;
    if (!held || !blob) return null;
    // Typed as the offer says (checked against the content for images), so
    // that the browser adds no extension of its own guessing when saving.
    const url = URL.createObjectURL(blob.slice(0, blob.size, held.meta.type));
    this.urls.set(fid, url);
    return url;
  }

  // ------------------------------------------------------------ fetching

  /**
   * @private
   * @param {string} fid
   */
  savedKey(fid) {
    return `${SAVED_PREFIX}${this.room.roomId}.${this.room.selfId}.${fid}`;
  }

  /**
   * Carries out what a receiver asks for, and arms its timer.
   * @private
   * @param {Fetch} fetch
   * @param {ReceiverAction[]} actions
   */
  carry(fetch, actions) {
    if (this.dropped.has(fetch)) return;
    const fid = fetch.meta.fid;
    for (const a of actions) {
      if ('open' in a) this.openChannel(fetch, a.open);
      else if ('send' in a) {
        const ch = fetch.channels.get(a.send.to);
        if (ch?.readyState === 'open') ch.send(a.send.text);
      } else if ('close' in a) {
        const ch = fetch.channels.get(a.close);
        fetch.channels.delete(a.close);
        ch?.close();
      } else if ('write' in a) {
        this.gather(fetch, a.write.offset, a.write.data);
      } else if ('read' in a) {
        const { offset, len } = a.read;
        this.flush(fetch);
        void this.diskOf()
          .ask({ op: 'read', name: fid, offset, len })
          .then((data) => this.carry(fetch, fetch.receiver.read(offset, data, Date.now())));
      } else if ('whole' in a) {
        // The worker hashes the whole file from what it wrote, in order:
        // after the write of these bytes, if they are still gathered.
        fetch.wholes.push(a.whole);
        if (!fetch.batch) this.hashWholes(fetch);
      } else if ('whole_digest' in a) {
        this.flush(fetch);
        void this.diskOf()
          .ask({ op: 'digest', name: fid })
          .then((digest) => this.carry(fetch, fetch.receiver.wholeDigest(digest, Date.now())))
          .catch((e) => console.warn('peerchat: could not hash a received file', e));
      } else if ('verified' in a) {
        fetch.saving ??= setTimeout(() => {
          fetch.saving = undefined;
          this.keepRunning(fetch);
        }, KEEP_MS);
      } else if ('source_failed' in a) {
        // What that holder sent of a piece it did not finish is written too,
        // so that the machine's count of bytes not yet written comes down.
        this.flush(fetch);
      } else if ('corrupt' in a) {
        console.warn(`peerchat: piece ${a.corrupt.piece} of ${fetch.meta.name} did not match its hash; fetching it again`);
      } else if ('state' in a) {
        if (a.state === 'complete') {
          this.keepProgress(fetch, true);
          this.hold(fetch);
        } else if (typeof a.state === 'object' && ('failed' in a.state || 'cancelled' in a.state)) {
          for (const ch of fetch.channels.values()) ch.close();
          fetch.channels.clear();
          fetch.batch = null;
          fetch.wholes = [];
          try {
            localStorage.removeItem(this.savedKey(fid));
          } catch {
            // Nothing kept.
          }
          void this.diskOf().ask({ op: 'remove', name: fid });
        }
      }
    }
    // Nothing more on its way: what is gathered is written now.
    if (fetch.batch && !onItsWay(fetch.receiver)) this.flush(fetch);
    const now = Date.now();
    if (now - fetch.rate.at >= 500) {
      const bytes = fetch.receiver.progress().bytes;
      fetch.rate = { at: now, bytes, perSecond: Math.max(0, ((bytes - fetch.rate.bytes) * 1000) / (now - fetch.rate.at)) };
    }
    arm(fetch, fetch.receiver.nextDeadline(), () => this.carry(fetch, fetch.receiver.handleTimeout(Date.now())));
    if (actions.length > 0) this.changed(fid, actions.some((a) => 'state' in a));
  }

  /**
   * Received bytes to write: gathered with the ones before them and written
   * in one go, up to {@link WRITE_BATCH}, or sooner when the next do not
   * follow on, nothing more is on its way, or the file must be read.
   * @private
   * @param {Fetch} fetch
   * @param {number} offset
   * @param {Uint8Array} data
   */
  gather(fetch, offset, data) {
    let batch = fetch.batch;
    if (batch && (batch.offset + batch.len !== offset || batch.len + data.length > batch.bytes.length)) {
      this.flush(fetch);
      batch = null;
    }
    if (!batch) {
      batch = { offset, bytes: new Uint8Array(Math.max(data.length, Math.min(WRITE_BATCH, fetch.meta.size - offset))), len: 0 };
      fetch.batch = batch;
    }
    batch.bytes.set(data, batch.len);
    batch.len += data.length;
    if (batch.len === batch.bytes.length) this.flush(fetch);
  }

  /**
   * Writes what was gathered (the machine is told when it is done), then
   * asks the worker to hash for the whole file what waited for that write.
   * @private
   * @param {Fetch} fetch
   */
  flush(fetch) {
    const batch = fetch.batch;
    if (!batch) return;
    fetch.batch = null;
    const { offset, len } = batch;
    fetch.writes = this.diskOf()
      .ask({ op: 'write', name: fetch.meta.fid, offset, data: batch.bytes.subarray(0, len) })
      .then(
        () => this.carry(fetch, fetch.receiver.written(len, Date.now())),
        (e) => console.warn('peerchat: could not write a received file', e),
      );
    this.hashWholes(fetch);
  }

  /**
   * Asks the worker to hash, for the whole file, the pieces that wait.
   * @private
   * @param {Fetch} fetch
   */
  hashWholes(fetch) {
    for (const { offset, len } of fetch.wholes.splice(0)) {
      void this.diskOf()
        .ask({ op: 'hash', name: fetch.meta.fid, offset, len })
        .catch((e) => console.warn('peerchat: could not hash a received file', e));
    }
  }

  /**
   * Keeps the progress of a transfer still under way (not one whole, or
   * stopped by a clear).
   * @private
   * @param {Fetch} fetch
   */
  keepRunning(fetch) {
    const st = fetch.receiver.state;
    if (this.dropped.has(fetch)) return;
    if (typeof st === 'string' ? st !== 'complete' : 'stalled' in st) this.keepProgress(fetch, false);
  }

  /**
   * @private
   * @param {Fetch} fetch
   * @param {boolean} complete
   */
  keepProgress(fetch, complete) {
    try {
      const kept = { sha256: fetch.meta.sha256, saved: fetch.receiver.saved(), complete };
      localStorage.setItem(this.savedKey(fetch.meta.fid), JSON.stringify(kept));
    } catch {
      // Storage full or off: a reload starts this file again.
    }
  }

  /**
   * A fetched file is whole and checked: we hold it, and may serve it.
   * @private
   * @param {Fetch} fetch
   */
  hold(fetch) {
    const fid = fetch.meta.fid;
    const disk = this.diskOf();
    this.held.set(fid, { meta: fetch.meta, party: fetch.party, blob: () => fetch.writes.then(() => disk.file(fid)), list: null });
    void (async () => {
      const blob = await this.blob(fid);
      if (!blob) return;
      const prefix = new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer());
      fetch.preview = showsAsImage(fetch.meta.type, prefix);
      this.changed(fid);
    })();
  }

  /**
   * Opens a `file` channel to `peer` for this fetch.
   * @private
   * @param {Fetch} fetch
   * @param {string} peer
   */
  openChannel(fetch, peer) {
    const link = this.room.members.get(peer)?.link;
    if (!link || !link.isOpen) {
      queueMicrotask(() => this.carry(fetch, fetch.receiver.closed(peer, Date.now())));
      return;
    }
    const ch = link.pc.createDataChannel(LABEL, { ordered: true });
    ch.binaryType = 'arraybuffer';
    fetch.channels.set(peer, ch);
    const current = () => fetch.channels.get(peer) === ch;
    // The message that completes a piece goes in with the piece's SHA-256,
    // which WebCrypto computes off the script's thread; what the channel
    // brings meanwhile waits behind it, so the machine sees it all in order.
    const parts = new PieceParts(fetch.meta);
    let queue = Promise.resolve();
    /** @param {() => Promise<void> | void} step */
    const inOrder = (step) => {
      queue = queue.then(step).catch((e) => console.warn('peerchat: a file channel message failed', e));
    };
    ch.addEventListener('open', () => {
      inOrder(() => {
        if (current()) this.carry(fetch, fetch.receiver.opened(peer, Date.now()));
      });
    });
    ch.addEventListener('message', (event) => {
      if (!current()) return;
      if (typeof event.data === 'string') {
        const text = event.data;
        inOrder(() => {
          if (current()) this.carry(fetch, fetch.receiver.text(peer, text, Date.now()));
        });
        return;
      }
      const bytes = new Uint8Array(event.data);
      if (this.corruptNext && bytes[0] === 1 && bytes.length > 9) {
        this.corruptNext = false;
        bytes[9] ^= 0xff;
      }
      const piece = parts.add(bytes);
      inOrder(async () => {
        const digest = piece ? new Uint8Array(await crypto.subtle.digest('SHA-256', /** @type {Uint8Array<ArrayBuffer>} */ (piece))) : undefined;
        if (current()) this.carry(fetch, fetch.receiver.binary(peer, bytes, Date.now(), digest));
      });
    });
    ch.addEventListener('close', () => {
      inOrder(() => {
        if (!current()) return;
        fetch.channels.delete(peer);
        this.carry(fetch, fetch.receiver.closed(peer, Date.now()));
      });
    });
  }

  // ------------------------------------------------------------- serving

  /**
   * A `file` channel a member opened to us: it asks for a file we may hold.
   * @param {string} peer
   * @param {RTCDataChannel} channel
   */
  channelFrom(peer, channel) {
    channel.binaryType = 'arraybuffer';
    /** @type {Serving} */
    const s = { peer, fid: '', channel, sender: null, timer: undefined, due: null, reads: Promise.resolve(), ahead: new Map() };
    this.serving.add(s);
    channel.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      if (s.sender) this.serve(s, s.sender.text(event.data, Date.now()));
      else void this.answerGet(s, event.data);
    });
    channel.addEventListener('bufferedamountlow', () => {
      if (s.sender) this.serve(s, s.sender.buffered(channel.bufferedAmount, Date.now()));
    });
    channel.addEventListener('close', () => {
      if (s.sender) this.serve(s, s.sender.closed(Date.now()));
      this.serving.delete(s);
      arm(s, null, () => {});
    });
  }

  /**
   * The first message on a channel must be a `get`.
   * @private
   * @param {Serving} s
   * @param {string} text
   */
  async answerGet(s, text) {
    const refuse = (/** @type {string} */ reason) => {
      if (s.channel.readyState === 'open') s.channel.send(controlJson({ type: 'cancel', reason }));
      s.channel.close();
    };
    let get;
    try {
      get = parseControl(text);
    } catch {
      refuse('protocol');
      return;
    }
    if (get.type !== 'get') {
      refuse('protocol');
      return;
    }
    const held = this.held.get(get.fid);
    if (!held || held.meta.sha256 !== get.sha256 || (held.party !== null && held.party !== s.peer)) {
      refuse('unavailable');
      return;
    }
    const mine = [...this.serving].filter((o) => o.sender !== null);
    if (mine.length >= MAX_SERVING || mine.filter((o) => o.peer === s.peer).length >= MAX_SERVING_PER_PEER) {
      refuse('busy');
      return;
    }
    s.fid = get.fid;
    if (!held.list) {
      // A file we fetched: its pieces' hashes, from the file on the device.
      const { digests } = await digestBlob(await held.blob());
      if (digests.sha256 && hex(digests.sha256) !== held.meta.sha256) {
        refuse('changed');
        return;
      }
      held.list = digests.pieces;
    }
    if (s.channel.readyState !== 'open') return;
    // Read a piece at a time, so that each read is checked natively.
    const config = { ...SENDER_CONFIG, readBytes: held.meta.piece };
    const { sender, actions } = Sender.create(held.meta, held.list, get.list, config, Date.now());
    s.sender = sender;
    s.channel.bufferedAmountLowThreshold = sender.lowWater();
    this.serve(s, actions);
  }

  /**
   * Carries out what a sender asks for.
   * @private
   * @param {Serving} s
   * @param {SenderAction[]} actions
   */
  serve(s, actions) {
    const sender = s.sender;
    if (!sender) return;
    for (const a of actions) {
      if ('send_text' in a) {
        if (s.channel.readyState === 'open') s.channel.send(a.send_text);
      } else if ('send_binary' in a) {
        if (s.channel.readyState === 'open') s.channel.send(/** @type {Uint8Array<ArrayBuffer>} */ (a.send_binary));
      } else if ('read' in a) {
        const { offset } = a.read;
        if (!s.ahead.has(offset)) this.readAhead(s, sender, offset / sender.meta.piece);
        const read = /** @type {Promise<Read>} */ (s.ahead.get(offset));
        s.ahead.delete(offset);
        this.readAhead(s, sender);
        s.reads = s.reads.then(async () => {
          const { bytes, digest } = await read;
          this.serve(s, sender.read(offset, bytes, Date.now(), digest));
        });
      } else if ('close' in a) {
        s.channel.close();
      }
    }
    if (sender.state !== 'serving') s.ahead.clear();
    const sent = this.sent.get(s.fid);
    if (sent) {
      // Served to the end: the member closed the channel with all of it.
      const bytes = sender.state === 'done' ? sender.meta.size : sender.delivered();
      sent.set(s.peer, Math.max(sent.get(s.peer) ?? 0, bytes));
      this.changed(s.fid, actions.some((a) => 'state' in a));
    }
    arm(s, sender.nextDeadline(), () => this.serve(s, sender.handleTimeout(Date.now())));
  }

  /**
   * Reads pieces of a file we serve, `pieces` (consecutive) in one go, and
   * each one's SHA-256 (WebCrypto) to be checked against the list (the file
   * may have changed since it was offered), into `s.ahead`.
   * @private
   * @param {Serving} s
   * @param {FileMeta} meta
   * @param {number[]} pieces
   */
  readBlock(s, meta, pieces) {
    const start = pieces[0] * meta.piece;
    const end = Math.min(meta.size, (pieces[pieces.length - 1] + 1) * meta.piece);
    const block = (async () => {
      try {
        const blob = await this.held.get(s.fid)?.blob();
        return blob ? new Uint8Array(await blob.slice(start, end).arrayBuffer()) : new Uint8Array(0);
      } catch (e) {
        // Gone or unreadable: short reads, which the sender takes for a
        // file changed since it was offered.
        console.warn('peerchat: could not read a file being sent', e);
        return new Uint8Array(0);
      }
    })();
    for (const index of pieces) {
      const at = index * meta.piece - start;
      const read = block.then(async (bytes) => {
        const part = bytes.subarray(Math.min(at, bytes.length), Math.min(at + pieceLen(meta, index), bytes.length));
        return { bytes: part, digest: new Uint8Array(await crypto.subtle.digest('SHA-256', part)) };
      });
      s.ahead.set(index * meta.piece, read);
    }
  }

  /**
   * Reads ahead what the sender will ask for next: the pieces it was asked
   * for, consecutive ones in one read of up to {@link READ_BLOCK} bytes,
   * begun when what was read ahead before is half sent. A `File.slice`
   * read costs the page a few milliseconds whatever its size (256 KiB at a
   * time, they were a quarter of the sending page's time), and a read
   * waited for only when the sender asks for it left the channel empty
   * while it ran.
   * @private
   * @param {Serving} s
   * @param {Sender} sender
   * @param {number | null} [first] a piece the sender asks for now
   */
  readAhead(s, sender, first = null) {
    const { meta } = sender;
    if (first === null && s.ahead.size * meta.piece > READ_BLOCK / 2) return;
    /** @type {number[]} */
    const run = first === null ? [] : [first];
    for (const index of sender.queue) {
      const next = run.length === 0 || index === run[run.length - 1] + 1;
      if (s.ahead.has(index * meta.piece) || !next || (run.length + 1) * meta.piece > READ_BLOCK) {
        if (run.length > 0) break;
        continue;
      }
      run.push(index);
    }
    if (run.length > 0) this.readBlock(s, meta, run);
  }

  /**
   * Tells the page that a transfer changed: at once when its state did,
   * else (progress) at most every {@link PROGRESS_MS}.
   * @private
   * @param {string} fid
   * @param {boolean} [now]
   */
  changed(fid, now = true) {
    if (!now) {
      if (!this.progressing.has(fid)) {
        this.progressing.set(fid, setTimeout(() => this.changed(fid), PROGRESS_MS));
      }
      return;
    }
    clearTimeout(this.progressing.get(fid));
    this.progressing.delete(fid);
    this.dispatchEvent(new CustomEvent('transfer', { detail: { fid } }));
  }
}
