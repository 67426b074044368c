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
 *
 * Requests: `{id, op: 'write', name, offset, data}`, `{id, op: 'read',
 * name, offset, len}`, `{id, op: 'hash', name, offset, len}`, `{id, op:
 * 'digest', name}`, `{id, op: 'size', name}`, `{id, op: 'close', name}`,
 * `{id, op: 'remove', name}`; each is answered with `{id, ok, value?,
 * error?}` in order.
 */

import { sha256 } from './vendor/noble-hashes/sha2.js';

/** @type {Map<string, {hasher: ReturnType<typeof sha256.create>, next: number}>} */
const hashes = new Map();
/** Bytes read at a time to hash. */
const HASH_READ = 1024 * 1024;

/** @type {Map<string, FileSystemSyncAccessHandle>} */
const handles = new Map();
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
      let at = 0;
      while (at < data.length) at += h.write(data.subarray(at), { at: (req.offset ?? 0) + at });
      return data.length;
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
      if (offset === 0) hashes.set(req.name, { hasher: sha256.create(), next: 0 });
      const whole = hashes.get(req.name);
      if (!whole || whole.next !== offset) throw new Error(`hash out of order at ${offset}`);
      const buf = new Uint8Array(Math.min(HASH_READ, Math.max(len, 1)));
      for (let at = 0; at < len; ) {
        const n = h.read(buf.subarray(0, Math.min(buf.length, len - at)), { at: offset + at });
        if (n === 0) throw new Error(`short read at ${offset + at}`);
        whole.hasher.update(buf.subarray(0, n));
        at += n;
      }
      whole.next = offset + len;
      return null;
    }
    case 'digest': {
      const whole = hashes.get(req.name);
      hashes.delete(req.name);
      const bytes = whole ? whole.hasher.digest() : sha256(new Uint8Array(0));
      let out = '';
      for (const b of bytes) out += b.toString(16).padStart(2, '0');
      return out;
    }
    case 'size':
      return (await handle(req.name)).getSize();
    case 'close': {
      const h = handles.get(req.name);
      if (h) {
        h.flush();
        h.close();
        handles.delete(req.name);
      }
      return null;
    }
    case 'remove': {
      hashes.delete(req.name);
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
self.addEventListener('message', (event) => {
  const req = /** @type {MessageEvent} */ (event).data;
  chain = chain.then(async () => {
    try {
      const value = await run(req);
      const transfer = value instanceof Uint8Array ? [value.buffer] : [];
      self.postMessage({ id: req.id, ok: true, value }, { transfer });
    } catch (e) {
      self.postMessage({ id: req.id, ok: false, error: String(e) });
    }
  });
});
