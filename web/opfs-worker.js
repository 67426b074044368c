// @ts-check
/**
 * Received files on the device: a worker that writes and reads files in
 * the Origin Private File System through synchronous access handles (only
 * workers have them), so every piece is on disk as soon as it is written
 * (a reload resumes from it) and the page never holds a file in memory.
 *
 * Requests: `{id, op: 'write', name, offset, data}`, `{id, op: 'read',
 * name, offset, len}`, `{id, op: 'size', name}`, `{id, op: 'close', name}`,
 * `{id, op: 'remove', name}`; each is answered with `{id, ok, value?,
 * error?}` in order.
 */

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
  h = await /** @type {any} */ (file).createSyncAccessHandle();
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
