// @ts-check
/**
 * Fetching files, in the page's file worker (`../opfs-worker.js`): the
 * driver of transfer.js's {@link Receiver} machines and of the `file` data
 * channels they fetch on. The page makes each channel on the member's peer
 * connection and hands it over at once (a transferred `RTCDataChannel`:
 * its messages are delivered to this worker's thread), so the 16 KiB
 * messages of a file never wait for, nor hold up, the page's thread, which
 * draws the conversation. Received bytes are gathered here and written to
 * the Origin Private File System through the worker's disk, and the whole
 * file is hashed there as it is written; each piece's SHA-256 comes from
 * WebCrypto.
 *
 * The page tells it (`handle`): `fetch` a file (with what was kept of it on
 * the device), `channel` (the channel asked for, or null when the member's
 * connection is not open), `peer_up`/`peer_down`, `accept`, `cancel`,
 * `drop` (a clear: stop, say nothing more), `corrupt` (test hook: flip a
 * byte of the next piece). It tells the page (`post`): `open` (make a
 * channel to this member for this file), `status` (state, bytes, rate and
 * what to keep on the device; at once when the state changes, else at most
 * every {@link PROGRESS_MS}), `keep` (keep this on the device now) and
 * `forget` (the transfer failed or was cancelled: keep nothing of it).
 *
 * Where a browser cannot transfer a data channel, the page relays one
 * instead: {@link RelayedChannel} stands for it here.
 * @module
 */

import { isOver, PieceParts, Receiver } from './transfer.js';

/**
 * @typedef {import('./protocol.js').FileMeta} FileMeta
 * @typedef {import('./transfer.js').ReceiverAction} ReceiverAction
 * @typedef {import('./transfer.js').ReceiverConfig} ReceiverConfig
 * @typedef {import('./transfer.js').ReceiverState} ReceiverState
 * @typedef {import('./transfer.js').Saved} Saved
 * @typedef {{op: string, name: string, offset?: number, len?: number, data?: Uint8Array}} DiskRequest
 * @typedef {(req: DiskRequest) => Promise<any>} Disk
 *   the worker's file operations, carried out one after another in order
 * @typedef {{readyState: RTCDataChannelState, binaryType: string, send: (text: string) => void, close: () => void,
 *   addEventListener: (type: string, listener: (event: Event) => void) => void}} Channel
 *   what the fetcher uses of a data channel (a {@link RelayedChannel} has it too)
 * @typedef {{fid: string, receiver: Receiver, channels: Map<string, Channel>,
 *   timer: ReturnType<typeof setTimeout> | undefined, due: number | null,
 *   saving: ReturnType<typeof setTimeout> | undefined, reporting: ReturnType<typeof setTimeout> | undefined,
 *   rate: {at: number, bytes: number, perSecond: number},
 *   batch: {offset: number, bytes: Uint8Array, len: number} | null, wholes: {offset: number, len: number}[],
 *   dropped: boolean, reserved: boolean}} Fetch
 *   `batch`: parts received, gathered for one write; `wholes`: what is to
 *   be hashed for the whole file once that write is asked for
 * @typedef {{event: 'open', fid: string, peer: string}
 *   | {event: 'status', fid: string, state: ReceiverState, bytes: number, size: number, rate: number, saved: Saved}
 *   | {event: 'keep', fid: string, saved: Saved, complete: boolean}
 *   | {event: 'forget', fid: string}
 *   | {event: 'relay_send', rid: number, data: string}
 *   | {event: 'relay_close', rid: number}} FetcherEvent
 * @typedef {{op: 'fetch', fid: string, meta: FileMeta, author: string, config: Partial<ReceiverConfig>, saved?: Saved, peers: string[]}
 *   | {op: 'channel', fid: string, peer: string, channel: RTCDataChannel | null}
 *   | {op: 'relay_channel', fid: string, peer: string, rid: number}
 *   | {op: 'relay', rid: number, kind: 'open' | 'message' | 'close', data?: string | ArrayBuffer}
 *   | {op: 'peer_up', peer: string, fids: string[]}
 *   | {op: 'peer_down', peer: string}
 *   | {op: 'accept' | 'cancel', fid: string}
 *   | {op: 'drop'}
 *   | {op: 'corrupt'}} FetcherRequest
 */

/** How often at most the page hears of a transfer's progress. */
export const PROGRESS_MS = 200;
/**
 * How often at most a transfer's progress is kept on the device while it
 * runs (the page keeps it in `localStorage`, which is synchronous). A
 * reload loses at most that much: what was kept is read back and checked
 * before it counts anyway.
 */
const KEEP_MS = 1000;
/**
 * Most bytes of a received file gathered for one write: an OPFS write
 * costs about the same whatever its size.
 */
const WRITE_BATCH = 1024 * 1024;

/** The requests {@link Fetcher.handle} takes (the rest are the disk's). */
export const FETCHER_OPS = new Set(['fetch', 'channel', 'relay_channel', 'relay', 'peer_up', 'peer_down', 'accept', 'cancel', 'drop', 'corrupt']);

/**
 * Arms `t`'s timer to call `fire` at `due` (null: nothing due). A timer
 * already set no later is left alone: the machines' deadlines move with
 * every message, and their `handleTimeout` does nothing before one is
 * reached, so an early call only arms the next.
 * @param {{timer: ReturnType<typeof setTimeout> | undefined, due: number | null}} t
 * @param {number | null} due
 * @param {() => void} fire
 */
export function arm(t, due, fire) {
  if (due !== null && t.due !== null && t.due <= due) return;
  clearTimeout(t.timer);
  t.timer = undefined;
  t.due = due;
  if (due === null) return;
  t.timer = setTimeout(
    () => {
      t.timer = undefined;
      t.due = null;
      fire();
    },
    Math.max(0, due - Date.now()),
  );
}

/**
 * Whether a receiver asked for bytes that have not arrived.
 * @param {Receiver} receiver
 */
function onItsWay(receiver) {
  for (const source of receiver.sources.values()) if (source.outstanding > 0) return true;
  return false;
}

/**
 * A data channel the page relays, for a browser that cannot transfer one:
 * what arrives on it comes in `relay` requests, and what is sent on it goes
 * out as `relay_send`.
 */
export class RelayedChannel extends EventTarget {
  /**
   * @param {number} rid
   * @param {(event: FetcherEvent, transfer?: Transferable[]) => void} post
   */
  constructor(rid, post) {
    super();
    this.rid = rid;
    this.post = post;
    /** @type {RTCDataChannelState} */
    this.readyState = 'connecting';
    this.binaryType = 'arraybuffer';
  }

  /** @param {string} text */
  send(text) {
    if (this.readyState === 'open') this.post({ event: 'relay_send', rid: this.rid, data: text });
  }

  close() {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.post({ event: 'relay_close', rid: this.rid });
  }

  /**
   * What the page saw on the channel.
   * @param {'open' | 'message' | 'close'} kind
   * @param {string | ArrayBuffer} [data]
   */
  relayed(kind, data) {
    if (kind === 'open') {
      if (this.readyState !== 'connecting') return;
      this.readyState = 'open';
      this.dispatchEvent(new Event('open'));
    } else if (kind === 'message') {
      if (this.readyState === 'open') this.dispatchEvent(new MessageEvent('message', { data }));
    } else {
      const was = this.readyState;
      this.readyState = 'closed';
      if (was !== 'closed') this.dispatchEvent(new Event('close'));
    }
  }
}

export class Fetcher {
  /**
   * @param {Disk} disk
   * @param {(event: FetcherEvent, transfer?: Transferable[]) => void} post
   */
  constructor(disk, post) {
    this.disk = disk;
    this.post = post;
    /** @type {Map<string, Fetch>} */
    this.fetches = new Map();
    /** @type {Map<number, RelayedChannel>} */
    this.relayed = new Map();
    /** Test hook: corrupt the next piece received (a byte flipped). */
    this.corruptNext = false;
  }

  /** @param {FetcherRequest} req */
  handle(req) {
    const now = Date.now();
    switch (req.op) {
      case 'fetch': {
        if (this.fetches.has(req.fid)) return;
        const receiver = new Receiver(req.meta, req.author, req.config, req.saved);
        /** @type {Fetch} */
        const f = {
          fid: req.fid,
          receiver,
          channels: new Map(),
          timer: undefined,
          due: null,
          saving: undefined,
          reporting: undefined,
          rate: { at: now, bytes: receiver.progress().bytes, perSecond: 0 },
          batch: null,
          wholes: [],
          dropped: false,
          reserved: false,
        };
        this.fetches.set(req.fid, f);
        this.carry(f, receiver.start(now));
        for (const peer of req.peers) this.carry(f, receiver.peerUp(peer, Date.now()));
        return;
      }
      case 'channel': {
        const f = this.fetches.get(req.fid);
        if (!f || !req.channel) {
          req.channel?.close();
          if (f) this.carry(f, f.receiver.closed(req.peer, now));
          return;
        }
        this.adopt(f, req.peer, req.channel);
        return;
      }
      case 'relay_channel': {
        const ch = new RelayedChannel(req.rid, this.post);
        this.relayed.set(req.rid, ch);
        const f = this.fetches.get(req.fid);
        if (f) this.adopt(f, req.peer, ch);
        else ch.close();
        return;
      }
      case 'relay': {
        const ch = this.relayed.get(req.rid);
        if (req.kind === 'close') this.relayed.delete(req.rid);
        ch?.relayed(req.kind, req.data);
        return;
      }
      case 'peer_up':
        for (const fid of req.fids) {
          const f = this.fetches.get(fid);
          if (f) this.carry(f, f.receiver.peerUp(req.peer, now));
        }
        return;
      case 'peer_down':
        for (const f of this.fetches.values()) this.carry(f, f.receiver.peerDown(req.peer, now));
        return;
      case 'accept':
      case 'cancel': {
        const f = this.fetches.get(req.fid);
        if (f) this.carry(f, req.op === 'accept' ? f.receiver.accept(now) : f.receiver.cancel(now));
        return;
      }
      case 'drop':
        for (const f of this.fetches.values()) {
          f.dropped = true;
          clearTimeout(f.timer);
          clearTimeout(f.saving);
          clearTimeout(f.reporting);
          for (const ch of f.channels.values()) ch.close();
          f.channels.clear();
        }
        this.fetches.clear();
        return;
      case 'corrupt':
        this.corruptNext = true;
        return;
    }
  }

  /**
   * Carries out what a receiver asks for, arms its timer, and tells the
   * page.
   * @private
   * @param {Fetch} f
   * @param {ReceiverAction[]} actions
   */
  carry(f, actions) {
    if (f.dropped) return;
    const { fid, receiver } = f;
    let stateChanged = false;
    for (const a of actions) {
      if ('open' in a) this.post({ event: 'open', fid, peer: a.open });
      else if ('send' in a) {
        const ch = f.channels.get(a.send.to);
        if (ch?.readyState === 'open') ch.send(a.send.text);
      } else if ('close' in a) {
        const ch = f.channels.get(a.close);
        f.channels.delete(a.close);
        ch?.close();
      } else if ('write' in a) {
        this.gather(f, a.write.offset, a.write.data);
      } else if ('read' in a) {
        const { offset, len } = a.read;
        this.flush(f);
        void this.disk({ op: 'read', name: fid, offset, len }).then((data) => this.carry(f, receiver.read(offset, data, Date.now())));
      } else if ('whole' in a) {
        // The whole file is hashed from what was written, in order: after
        // the write of these bytes, if they are still gathered.
        f.wholes.push(a.whole);
        if (!f.batch) this.hashWholes(f);
      } else if ('whole_digest' in a) {
        this.flush(f);
        void this.disk({ op: 'digest', name: fid })
          .then((digest) => this.carry(f, receiver.wholeDigest(digest, Date.now())))
          .catch((e) => console.warn('peerchat: could not hash a received file', e));
      } else if ('verified' in a) {
        f.saving ??= setTimeout(() => {
          f.saving = undefined;
          if (!f.dropped && !isOver(receiver.state)) this.keep(f, false);
        }, KEEP_MS);
      } else if ('source_failed' in a) {
        // What that holder sent of a piece it did not finish is written too,
        // so that the machine's count of bytes not yet written comes down.
        this.flush(f);
      } else if ('corrupt' in a) {
        console.warn(`peerchat: piece ${a.corrupt.piece} of ${receiver.meta.name} did not match its hash; fetching it again`);
      } else if ('state' in a) {
        stateChanged = true;
        if (a.state === 'complete') this.keep(f, true);
        else if (isOver(a.state)) {
          for (const ch of f.channels.values()) ch.close();
          f.channels.clear();
          f.batch = null;
          f.wholes = [];
          clearTimeout(f.saving);
          this.post({ event: 'forget', fid });
          void this.disk({ op: 'remove', name: fid });
        } else this.keep(f, false);
      }
    }
    // Nothing more on its way: what is gathered is written now.
    if (f.batch && !onItsWay(receiver)) this.flush(f);
    const now = Date.now();
    if (now - f.rate.at >= 500) {
      const bytes = receiver.progress().bytes;
      f.rate = { at: now, bytes, perSecond: Math.max(0, ((bytes - f.rate.bytes) * 1000) / (now - f.rate.at)) };
    }
    arm(f, receiver.nextDeadline(), () => this.carry(f, receiver.handleTimeout(Date.now())));
    if (stateChanged) this.report(f);
    else if (actions.length > 0) f.reporting ??= setTimeout(() => this.report(f), PROGRESS_MS);
  }

  /**
   * Tells the page where a transfer stands.
   * @private
   * @param {Fetch} f
   */
  report(f) {
    clearTimeout(f.reporting);
    f.reporting = undefined;
    if (f.dropped) return;
    const { bytes, size } = f.receiver.progress();
    this.post({ event: 'status', fid: f.fid, state: f.receiver.state, bytes, size, rate: f.rate.perSecond, saved: f.receiver.saved() });
  }

  /**
   * Asks the page to keep where a transfer stands on the device.
   * @private
   * @param {Fetch} f
   * @param {boolean} complete
   */
  keep(f, complete) {
    this.post({ event: 'keep', fid: f.fid, saved: f.receiver.saved(), complete });
  }

  /**
   * Received bytes to write: gathered with the ones before them and written
   * in one go, up to {@link WRITE_BATCH}, or sooner when the next do not
   * follow on, nothing more is on its way, or the file must be read.
   * @private
   * @param {Fetch} f
   * @param {number} offset
   * @param {Uint8Array} data
   */
  gather(f, offset, data) {
    let batch = f.batch;
    if (batch && (batch.offset + batch.len !== offset || batch.len + data.length > batch.bytes.length)) {
      this.flush(f);
      batch = null;
    }
    if (!batch) {
      batch = { offset, bytes: new Uint8Array(Math.max(data.length, Math.min(WRITE_BATCH, f.receiver.meta.size - offset))), len: 0 };
      f.batch = batch;
    }
    batch.bytes.set(data, batch.len);
    batch.len += data.length;
    if (batch.len === batch.bytes.length) this.flush(f);
  }

  /**
   * Writes what was gathered (the machine is told when it is done), then
   * hashes for the whole file what waited for that write.
   * @private
   * @param {Fetch} f
   */
  flush(f) {
    const batch = f.batch;
    if (!batch) return;
    f.batch = null;
    const { offset, len } = batch;
    if (!f.reserved) {
      f.reserved = true;
      void this.disk({ op: 'reserve', name: f.fid, len: f.receiver.meta.size }).catch(() => {});
    }
    void this.disk({ op: 'write', name: f.fid, offset, data: batch.bytes.subarray(0, len) }).then(
      () => this.carry(f, f.receiver.written(len, Date.now())),
      (e) => console.warn('peerchat: could not write a received file', e),
    );
    this.hashWholes(f);
  }

  /**
   * Hashes, for the whole file, the pieces that wait.
   * @private
   * @param {Fetch} f
   */
  hashWholes(f) {
    for (const { offset, len } of f.wholes.splice(0)) {
      void this.disk({ op: 'hash', name: f.fid, offset, len }).catch((e) => console.warn('peerchat: could not hash a received file', e));
    }
  }

  /**
   * Fetches on `ch`, the channel the page made to `peer` for this file.
   * @private
   * @param {Fetch} f
   * @param {string} peer
   * @param {Channel} ch
   */
  adopt(f, peer, ch) {
    if (f.dropped || isOver(f.receiver.state)) {
      ch.close();
      return;
    }
    ch.binaryType = 'arraybuffer';
    f.channels.get(peer)?.close();
    f.channels.set(peer, ch);
    const current = () => f.channels.get(peer) === ch;
    // The message that completes a piece goes in with the piece's SHA-256,
    // which WebCrypto computes off this thread; what the channel brings
    // meanwhile waits behind it, so the machine sees it all in order.
    // Anything else goes in at once when nothing waits.
    const parts = new PieceParts(f.receiver.meta);
    let queue = Promise.resolve();
    let waiting = 0;
    /** @param {() => Promise<void> | void} step */
    const inOrder = (step) => {
      waiting += 1;
      queue = queue
        .then(step)
        .catch((e) => console.warn('peerchat: a file channel message failed', e))
        .then(() => {
          waiting -= 1;
        });
    };
    /** @param {() => void} step */
    const soon = (step) => {
      if (waiting === 0) step();
      else inOrder(step);
    };
    const opened = () =>
      inOrder(() => {
        if (current()) this.carry(f, f.receiver.opened(peer, Date.now()));
      });
    ch.addEventListener('open', opened);
    if (ch.readyState === 'open') opened();
    ch.addEventListener('message', (event) => {
      if (!current()) return;
      const data = /** @type {MessageEvent} */ (event).data;
      if (typeof data === 'string') {
        soon(() => {
          if (current()) this.carry(f, f.receiver.text(peer, data, Date.now()));
        });
        return;
      }
      const bytes = new Uint8Array(data);
      if (this.corruptNext && bytes[0] === 1 && bytes.length > 9) {
        this.corruptNext = false;
        bytes[9] ^= 0xff;
      }
      const piece = parts.add(bytes);
      if (!piece) {
        soon(() => {
          if (current()) this.carry(f, f.receiver.binary(peer, bytes, Date.now()));
        });
        return;
      }
      // Started now: WebCrypto copies the piece at once (the gatherer's
      // buffer takes the next), and hashes it while what came before is
      // carried out.
      const hashing = crypto.subtle.digest('SHA-256', /** @type {Uint8Array<ArrayBuffer>} */ (piece));
      inOrder(async () => {
        const digest = new Uint8Array(await hashing);
        if (current()) this.carry(f, f.receiver.binary(peer, bytes, Date.now(), digest));
      });
    });
    ch.addEventListener('close', () => {
      inOrder(() => {
        if (!current()) return;
        f.channels.delete(peer);
        this.carry(f, f.receiver.closed(peer, Date.now()));
      });
    });
  }
}
