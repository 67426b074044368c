// @ts-check
/**
 * Files in a room: offering, fetching and serving them. It offers files
 * (hashed piece by piece with `File.slice`, the offer signed as a log
 * entry of the room or of a private conversation), has the files offered
 * to us fetched by the file worker (`../opfs-worker.js` with `fetcher.js`:
 * a {@link import('./transfer.js').Receiver} per file, on `file` data
 * channels this page makes and hands over to the worker at once, pieces
 * written to the Origin Private File System as they arrive; progress is
 * kept in localStorage, so that a reload resumes), and serves the files it
 * holds whole (a {@link Sender} per `file` channel opened to it, with
 * `bufferedAmountLowThreshold` back-pressure). No DOM: the page renders
 * what it emits.
 *
 * Events (on this object): `transfer` (detail: {fid}) a transfer's state
 * or progress changed.
 * @module
 */

import { arm, PROGRESS_MS } from './fetcher.js';
import {
  controlJson,
  digestBlob,
  hex,
  isOver,
  LABEL,
  MAX_SERVING,
  MAX_SERVING_PER_PEER,
  offerOf,
  parseControl,
  pieceLen,
  RECEIVER_DEFAULTS,
  Sender,
  showsAsImage,
  SNIFF_BYTES,
  startsAccepted,
} from './transfer.js';
import { randomId } from './protocol.js';

/**
 * @typedef {import('./protocol.js').FileMeta} FileMeta
 * @typedef {import('./room.js').Room} Room
 * @typedef {import('./transfer.js').ReceiverState} ReceiverState
 * @typedef {import('./transfer.js').Saved} Saved
 * @typedef {import('./transfer.js').SenderAction} SenderAction
 * @typedef {import('./fetcher.js').FetcherEvent} FetcherEvent
 * @typedef {import('./fetcher.js').FetcherRequest} FetcherRequest
 * @typedef {{meta: FileMeta, party: string | null, blob: () => Promise<Blob>, list: Uint8Array[] | null}} Held
 *   a file we can serve: `party` the other member of a private offer (only
 *   it may fetch it), null for the room's
 * @typedef {{meta: FileMeta, party: string | null, state: ReceiverState, bytes: number, rate: number,
 *   saved: Saved | null, preview: boolean | null}} Fetch
 *   a file we fetch (or fetched), as the file worker last told
 * @typedef {{peer: string, fid: string, channel: RTCDataChannel, sender: Sender | null,
 *   timer: ReturnType<typeof setTimeout> | undefined, due: number | null, reads: Promise<unknown>,
 *   ahead: Map<number, Promise<Read>>, ready: Promise<boolean>}} Serving
 *   `ahead`: the reads begun of the pieces asked for next, by offset;
 *   `ready`: whether the member's hello verified (a channel may come first)
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
 * most), counting what it received and has not written yet: it must cover
 * what arrives while a request goes to the holder and while a write (up to
 * 1 MiB) is done, or the link waits. While the page's own thread took the
 * file's messages, more than 2 MiB held chat messages behind them; the
 * file worker takes them now, and 4 MiB moved files about 15% faster on
 * the bench machine with the chat p95 under 50 ms.
 */
const RECEIVER_WINDOW = 4096 * 1024;

/** Most bytes of a file we serve read at a time (see `readAhead`). */
const READ_BLOCK = 1024 * 1024;

/** Where a transfer's progress is kept between page loads. */
const SAVED_PREFIX = 'peerchat.file.';

/**
 * The file worker: it writes and reads received files (OPFS), and fetches
 * files (`fetcher.js`).
 */
class Disk {
  /** @param {(event: FetcherEvent) => void} onEvent what the worker's fetcher tells */
  constructor(onEvent) {
    this.worker = new Worker('/opfs-worker.js', { type: 'module' });
    this.next = 1;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: Error) => void}>} */
    this.waiting = new Map();
    this.worker.addEventListener('message', (event) => {
      const data = event.data;
      if ('event' in data) {
        onEvent(data);
        return;
      }
      const { id, ok, value, error } = data;
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
   * Tells the worker's fetcher (no answer). Throws `DataCloneError` if a
   * channel in `transfer` cannot be handed over.
   * @param {FetcherRequest} req
   * @param {Transferable[]} [transfer]
   */
  tell(req, transfer = []) {
    this.worker.postMessage(req, transfer);
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
    this.autoAccept = autoAccept ?? RECEIVER_DEFAULTS.autoAccept;
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
    /** @type {Map<number, RTCDataChannel>} channels relayed to the worker (see `relay`), by relay id */
    this.relays = new Map();
    this.nextRelay = 1;
    /** Test hook: relay transfer channels to the worker, as where they cannot be handed over. */
    this.forceRelay = false;
    // Leaving the page (a reload, a closed tab) keeps where every transfer
    // stands, as the worker last told (at most a fifth of a second old);
    // while it runs, that is kept at most once a second.
    globalThis.addEventListener?.('pagehide', () => {
      for (const [fid, fetch] of this.fetches) {
        if (fetch.saved && !isOver(fetch.state)) this.keepProgress(fid, fetch.saved, false);
      }
    });
  }

  /** Test hook: the next piece received is corrupted (a byte flipped). */
  set corruptNext(on) {
    if (on) this.diskOf().tell({ op: 'corrupt' });
  }

  get corruptNext() {
    return false;
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
    if (this.disk) this.disk.tell({ op: 'drop' });
    for (const fid of this.fetches.keys()) {
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
    this.disk ??= new Disk((event) => this.fromWorker(event));
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
    /** @type {Saved | undefined} */
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
    /** @type {Fetch} */
    const fetch = {
      meta,
      party,
      state: complete ? 'complete' : startsAccepted(meta, this.autoAccept, saved) ? 'fetching' : 'waiting',
      // The worker tells how far it is as soon as it starts.
      bytes: complete ? meta.size : 0,
      rate: 0,
      saved: saved ?? null,
      preview: null,
    };
    this.fetches.set(meta.fid, fetch);
    if (complete) {
      this.hold(fetch);
      this.changed(meta.fid);
      return;
    }
    const peers = [...this.room.members.values()].filter((m) => m.up && this.mayAsk(fetch, m.id)).map((m) => m.id);
    // Pieces are hashed with WebCrypto as they complete.
    const config = { window: RECEIVER_WINDOW, nativeDigests: true, autoAccept: this.autoAccept };
    this.diskOf().tell({ op: 'fetch', fid: meta.fid, meta, author: msg.authorId, config, saved, peers });
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
    if (this.fetches.has(fid)) this.diskOf().tell({ op: 'accept', fid });
  }

  /**
   * Stops fetching a file, or (ours) stops serving it to everyone.
   * @param {string} fid
   */
  cancel(fid) {
    if (this.fetches.has(fid)) this.diskOf().tell({ op: 'cancel', fid });
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
    const fids = [...this.fetches].filter(([, f]) => !isOver(f.state) && this.mayAsk(f, peer)).map(([fid]) => fid);
    if (fids.length > 0) this.diskOf().tell({ op: 'peer_up', peer, fids });
  }

  /** @param {string} peer */
  peerDown(peer) {
    if (this.disk && this.fetches.size > 0) this.disk.tell({ op: 'peer_down', peer });
  }

  /**
   * Where a transfer stands, for the page.
   * @param {string} fid
   */
  status(fid) {
    const fetch = this.fetches.get(fid);
    if (fetch) {
      const { state, bytes, rate, preview } = fetch;
      return { kind: /** @type {const} */ ('in'), state, bytes, size: fetch.meta.size, rate, preview };
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
   * What the worker's fetcher tells.
   * @private
   * @param {FetcherEvent} e
   */
  fromWorker(e) {
    switch (e.event) {
      case 'open':
        if (this.fetches.has(e.fid)) this.openChannel(e.fid, e.peer);
        break;
      case 'status': {
        const fetch = this.fetches.get(e.fid);
        if (!fetch) break;
        const done = e.state === 'complete' && fetch.state !== 'complete';
        Object.assign(fetch, { state: e.state, bytes: e.bytes, rate: e.rate, saved: e.saved });
        if (done) this.hold(fetch);
        this.changed(e.fid);
        break;
      }
      case 'keep':
        if (this.fetches.has(e.fid)) this.keepProgress(e.fid, e.saved, e.complete);
        break;
      case 'forget':
        try {
          localStorage.removeItem(this.savedKey(e.fid));
        } catch {
          // Nothing kept.
        }
        break;
      case 'relay_send': {
        const ch = this.relays.get(e.rid);
        if (ch?.readyState === 'open') ch.send(e.data);
        break;
      }
      case 'relay_close':
        this.relays.get(e.rid)?.close();
        this.relays.delete(e.rid);
        break;
    }
  }

  /**
   * @private
   * @param {string} fid
   * @param {Saved} saved
   * @param {boolean} complete
   */
  keepProgress(fid, saved, complete) {
    const meta = this.fetches.get(fid)?.meta;
    if (!meta) return;
    try {
      localStorage.setItem(this.savedKey(fid), JSON.stringify({ sha256: meta.sha256, saved, complete }));
    } catch {
      // Storage full or off: a reload starts this file again.
    }
  }

  /**
   * A fetched file is whole and checked (the worker wrote all of it before
   * saying so): we hold it, and may serve it.
   * @private
   * @param {Fetch} fetch
   */
  hold(fetch) {
    const fid = fetch.meta.fid;
    const disk = this.diskOf();
    this.held.set(fid, { meta: fetch.meta, party: fetch.party, blob: () => disk.file(fid), list: null });
    void (async () => {
      const blob = await this.blob(fid);
      if (!blob) return;
      const prefix = new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer());
      fetch.preview = showsAsImage(fetch.meta.type, prefix);
      this.changed(fid);
    })();
  }

  /**
   * Opens a `file` channel to `peer` for the worker to fetch `fid` on, and
   * hands it over in the same task (a channel can be transferred only
   * then). Where the browser cannot transfer one, it is relayed instead.
   * @private
   * @param {string} fid
   * @param {string} peer
   */
  openChannel(fid, peer) {
    const disk = this.diskOf();
    const link = this.room.members.get(peer)?.link;
    if (!link || !link.isOpen) {
      disk.tell({ op: 'channel', fid, peer, channel: null });
      return;
    }
    const ch = link.pc.createDataChannel(LABEL, { ordered: true });
    if (!this.forceRelay) {
      try {
        disk.tell({ op: 'channel', fid, peer, channel: ch }, [/** @type {any} */ (ch)]);
        return;
      } catch (e) {
        if (!(e instanceof DOMException && e.name === 'DataCloneError')) throw e;
      }
    }
    this.relay(fid, peer, ch);
  }

  /**
   * Relays a channel to the worker's fetcher: what arrives on it is posted
   * to the worker, and the worker posts what to send (`relay_send`).
   * @private
   * @param {string} fid
   * @param {string} peer
   * @param {RTCDataChannel} ch
   */
  relay(fid, peer, ch) {
    const disk = this.diskOf();
    const rid = this.nextRelay++;
    ch.binaryType = 'arraybuffer';
    this.relays.set(rid, ch);
    disk.tell({ op: 'relay_channel', fid, peer, rid });
    ch.addEventListener('open', () => disk.tell({ op: 'relay', rid, kind: 'open' }));
    ch.addEventListener('message', (event) => {
      const data = event.data;
      disk.tell({ op: 'relay', rid, kind: 'message', data }, data instanceof ArrayBuffer ? [data] : []);
    });
    ch.addEventListener('close', () => {
      this.relays.delete(rid);
      disk.tell({ op: 'relay', rid, kind: 'close' });
    });
  }

  // ------------------------------------------------------------- serving

  /**
   * A `file` channel a member opened to us: it asks for a file we may hold.
   * @param {string} peer
   * @param {RTCDataChannel} channel
   * @param {Promise<boolean>} [ready] whether the member's hello verified,
   *   when the channel came before it: its `get` is answered after, or the
   *   channel closed
   */
  channelFrom(peer, channel, ready = Promise.resolve(true)) {
    channel.binaryType = 'arraybuffer';
    /** @type {Serving} */
    const s = { peer, fid: '', channel, sender: null, timer: undefined, due: null, reads: Promise.resolve(), ahead: new Map(), ready };
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
    if (!(await s.ready)) {
      s.channel.close();
      return;
    }
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
    const { sender, actions } = Sender.create(held.meta, held.list, get.list, get.chunk, config, Date.now());
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
