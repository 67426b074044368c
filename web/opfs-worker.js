// @ts-check
/**
 * Received files on the device: a worker that writes and reads files in
 * the Origin Private File System through synchronous access handles (only
 * workers have them), so every piece is on disk as soon as it is written
 * (a reload resumes from it) and the page never holds a file in memory.
 *
 * It also keeps the SHA-256 of each file being received, off the page's
 * thread: `hash` feeds it the bytes written at `offset`, `len` (in order
 * from 0; offset 0 starts afresh), `digest` ends it and answers the hex.
 * The hash is `hash-wasm`'s SHA-256, in WebAssembly (vendored): WebCrypto's
 * `digest` is not incremental, and the pure-JS SHA-256 took several times
 * as long (most of this worker's time during a transfer). This script's
 * own response carries `'wasm-unsafe-eval'` in its Content-Security-Policy
 * (the server's `assets.rs`); the pages' does not. The bytes of the last
 * write to a file are kept until the next one: the page asks to hash a
 * piece right after writing it, and reading it back cost as much as
 * writing it.
 *
 * It also fetches files (`./js/fetcher.js`): the page hands it the `file`
 * data channels, so that their messages never reach the page's thread; its
 * requests (`fetch`, `channel`, …) have no `id` and no answer, and it posts
 * events of its own (`{event, …}`).
 *
 * Requests: `{id, op: 'write', name, offset, data}`, `{id, op: 'read',
 * name, offset, len}`, `{id, op: 'hash', name, offset, len}`, `{id, op:
 * 'digest', name}`, `{id, op: 'size', name}`, `{id, op: 'close', name}`,
 * `{id, op: 'remove', name}`; each is answered with `{id, ok, value?,
 * error?}` in order.
 */

// The package's browser build of SHA-256 alone, unchanged: loaded as a
// module, it puts its functions on `globalThis.hashwasm` (typed in the
// `.d.ts` beside it).
import './vendor/hash-wasm/sha256.umd.min.js';
import { sha256 as nobleSha256 } from './vendor/noble-hashes/sha2.js';
import { Fetcher, FETCHER_OPS } from './js/fetcher.js';

/**
 * @typedef {{update: (data: Uint8Array) => unknown, digest: () => string}} Hasher
 */

/** @type {Promise<boolean> | null} whether WebAssembly may be compiled here */
let wasm = null;

/**
 * A new incremental SHA-256: `hash-wasm`'s, or, where the browser does not
 * let this worker compile WebAssembly (one that rules a worker by its
 * page's policy), the pure-JS one, slower and the same.
 * @returns {Promise<Hasher>}
 */
async function createSha256() {
  const { createSHA256 } = globalThis.hashwasm;
  wasm ??= createSHA256().then(
    () => true,
    (/** @type {unknown} */ e) => {
      console.warn('peerchat: WebAssembly is refused here; hashing received files in JavaScript', e);
      return false;
    },
  );
  if (await wasm) {
    const h = await createSHA256();
    return { update: (data) => h.update(data), digest: () => h.digest('hex') };
  }
  const h = nobleSha256.create();
  return {
    update: (data) => h.update(data),
    digest: () => Array.from(h.digest(), (b) => b.toString(16).padStart(2, '0')).join(''),
  };
}

/** @type {Map<string, {hasher: Hasher, next: number}>} */
const hashes = new Map();
/** Bytes read at a time to hash. */
const HASH_READ = 1024 * 1024;

/** @type {Map<string, FileSystemSyncAccessHandle>} */
const handles = new Map();
/** @type {Map<string, {offset: number, data: Uint8Array}>} the last write to each file */
const lastWrites = new Map();
/** @type {FileSystemDirectoryHandle | null} */
let dir = null;

/** @param {string} name */
async function handle(name) {
  let h = handles.get(name);
  if (h) return h;
  dir ??= await (await navigator.storage.getDirectory()).getDirectoryHandle('peerchat-files', { create: true });
  const file = await dir.getFileHandle(name, { create: true });
  // After a reload, the page's previous worker may still hold the file for
  // a moment while it winds down (it may be hashing): wait for it to let go.
  for (let tries = 0; ; tries += 1) {
    try {
      h = await /** @type {any} */ (file).createSyncAccessHandle();
      break;
    } catch (e) {
      if (!(e instanceof DOMException && e.name === 'NoModificationAllowedError') || tries >= 100) throw e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  handles.set(name, /** @type {FileSystemSyncAccessHandle} */ (h));
  return /** @type {FileSystemSyncAccessHandle} */ (h);
}

/**
 * @param {{op: string, name: string, offset?: number, len?: number, data?: Uint8Array}} req
 */
async function run(req) {
  switch (req.op) {
    case 'write': {
      const h = await handle(req.name);
      const data = /** @type {Uint8Array} */ (req.data);
      const offset = req.offset ?? 0;
      let at = 0;
      while (at < data.length) at += h.write(data.subarray(at), { at: offset + at });
      lastWrites.set(req.name, { offset, data });
      return data.length;
    }
    case 'reserve': {
      // The file at its full size before it is written: a write past the
      // end asks the browser for room each time it grows.
      const h = await handle(req.name);
      if (h.getSize() < (req.len ?? 0)) h.truncate(req.len ?? 0);
      return null;
    }
    case 'read': {
      const h = await handle(req.name);
      const out = new Uint8Array(req.len ?? 0);
      const n = h.read(out, { at: req.offset ?? 0 });
      return out.subarray(0, n);
    }
    case 'hash': {
      const h = await handle(req.name);
      const offset = req.offset ?? 0;
      const len = req.len ?? 0;
      if (offset === 0) hashes.set(req.name, { hasher: await createSha256(), next: 0 });
      const whole = hashes.get(req.name);
      if (!whole || whole.next !== offset) throw new Error(`hash out of order at ${offset}`);
      // What the last write held is hashed from memory; anything else is
      // read back from the file.
      const last = lastWrites.get(req.name);
      /** @type {Uint8Array | null} */
      let buf = null;
      const end = offset + len;
      for (let at = offset; at < end; ) {
        if (last && at >= last.offset && at < last.offset + last.data.length) {
          const upto = Math.min(end, last.offset + last.data.length);
          whole.hasher.update(last.data.subarray(at - last.offset, upto - last.offset));
          at = upto;
          continue;
        }
        const upto = Math.min(end, last && last.offset > at ? last.offset : end, at + HASH_READ);
        buf ??= new Uint8Array(HASH_READ);
        const n = h.read(buf.subarray(0, upto - at), { at });
        if (n === 0) throw new Error(`short read at ${at}`);
        whole.hasher.update(buf.subarray(0, n));
        at += n;
      }
      whole.next = offset + len;
      return null;
    }
    case 'digest': {
      const whole = hashes.get(req.name);
      hashes.delete(req.name);
      return (whole ? whole.hasher : await createSha256()).digest();
    }
    case 'size':
      return (await handle(req.name)).getSize();
    case 'close': {
      const h = handles.get(req.name);
      lastWrites.delete(req.name);
      if (h) {
        h.flush();
        h.close();
        handles.delete(req.name);
      }
      return null;
    }
    case 'remove': {
      hashes.delete(req.name);
      lastWrites.delete(req.name);
      handles.get(req.name)?.close();
      handles.delete(req.name);
      dir ??= await (await navigator.storage.getDirectory()).getDirectoryHandle('peerchat-files', { create: true });
      await dir.removeEntry(req.name).catch(() => {});
      return null;
    }
    default:
      throw new Error(`unknown request ${req.op}`);
  }
}

let chain = Promise.resolve();
/**
 * Carries out a file operation after those asked for before it.
 * @param {{op: string, name: string, offset?: number, len?: number, data?: Uint8Array}} req
 * @returns {Promise<any>}
 */
function inTurn(req) {
  const done = chain.then(() => run(req));
  chain = done.then(
    () => {},
    () => {},
  );
  return done;
}

const fetcher = new Fetcher(inTurn, (event, transfer = []) => self.postMessage(event, { transfer }));

self.addEventListener('message', (event) => {
  const req = /** @type {MessageEvent} */ (event).data;
  if (FETCHER_OPS.has(req.op)) {
    fetcher.handle(req);
    return;
  }
  void inTurn(req).then(
    (value) => {
      const transfer = value instanceof Uint8Array ? [value.buffer] : [];
      self.postMessage({ id: req.id, ok: true, value }, { transfer });
    },
    (e) => self.postMessage({ id: req.id, ok: false, error: String(e) }),
  );
});
