// @ts-check
/**
 * Envelopes from peers, handled in batches. A burst (a peer flooding the
 * room, or a long history arriving) is taken in slices of a few
 * milliseconds, each in one task, so that the page draws, stores and
 * acknowledges once per slice rather than once per envelope, and stays
 * responsive in between.
 * @module
 */

import { parsePeerMessage } from './protocol.js';

/** Envelopes handled (and acknowledged) together. */
const BATCH = 64;
/** How long one slice may run before the page gets a turn. */
const SLICE_MS = 8;
/**
 * Past this many bytes waiting, slices do not stop for the page: what
 * waits stays bounded however fast envelopes arrive.
 */
const MAX_WAITING_BYTES = 8 * 1024 * 1024;

/**
 * @template T
 */
export class Inbox {
  /**
   * @param {(batch: Array<[T, string]>) => void} handle takes a batch of
   *   (sender, envelope), in the order they arrived
   */
  constructor(handle) {
    this.handle = handle;
    /** @type {Array<[T, string]>} */
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    this.scheduled = false;
    const channel = new MessageChannel();
    channel.port1.onmessage = () => this.run();
    /** A task soon, without the clamping of nested timers. */
    this.wake = () => channel.port2.postMessage(null);
  }

  /**
   * @param {T} from
   * @param {string} text
   */
  push(from, text) {
    this.queue.push([from, text]);
    this.bytes += text.length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.wake();
    }
  }

  /** @private */
  run() {
    this.scheduled = false;
    const start = performance.now();
    while (this.head < this.queue.length) {
      const batch = this.queue.slice(this.head, this.head + BATCH);
      this.head += batch.length;
      for (const item of batch) this.bytes -= item[1].length;
      this.handle(batch);
      if (this.bytes <= MAX_WAITING_BYTES && performance.now() - start > SLICE_MS) break;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      if (this.head > 4096) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (!this.scheduled) {
        this.scheduled = true;
        this.wake();
      }
    }
  }
}

/**
 * Of the acknowledgements in `effects` to one peer, keeps only the last
 * (the highest): a burst of messages is acknowledged once.
 * @param {import('./history.js').Effect[]} effects
 * @returns {import('./history.js').Effect[]}
 */
export function lastAcks(effects) {
  /** @type {Map<string, number>} index of the last ack to each peer */
  const last = new Map();
  const isAck = effects.map((e) => 'send' in e && e.send.text.length < 64 && ackKind(e.send.text));
  effects.forEach((e, i) => {
    if (isAck[i] && 'send' in e) last.set(e.send.to, i);
  });
  return effects.filter((e, i) => !isAck[i] || ('send' in e && last.get(e.send.to) === i));
}

/** @param {string} text */
function ackKind(text) {
  try {
    return parsePeerMessage(text).kind === 'ack';
  } catch {
    return false;
  }
}
