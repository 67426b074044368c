// What the file-transfer tests share: deterministic test bytes (the same
// generator runs in the page), their SHA-256, dropping files on a page's
// conversation, and a received file's card and Save button.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/**
 * A test file's bytes: deterministic, different at every offset.
 * @param {number} size
 * @param {number} seed
 */
export function bytesOf(size, seed) {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 255;
  }
  return out;
}

/** @param {Uint8Array} bytes */
export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** A 1×1 PNG. */
export const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
    '1f15c4890000000d4944415478da63f8cfc0f01f0005000200e2b7a0d60000000049454e44ae426082',
  'hex',
);

/**
 * Drops files on a page's conversation (the room's, or the open private
 * one): each `{name, size, seed}` made in the page with `bytesOf`'s
 * generator, or `{name, base64}`.
 * @param {import('playwright-core').Page} page
 * @param {string} zone the selector of the conversation
 * @param {Array<{name: string, size?: number, seed?: number, base64?: string}>} files
 */
export async function drop(page, zone, files) {
  await page.evaluate(
    ({ zone, files }) => {
      const dt = new DataTransfer();
      for (const f of files) {
        let bytes;
        if (f.base64 !== undefined) {
          bytes = Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0));
        } else {
          bytes = new Uint8Array(f.size ?? 0);
          let x = f.seed ?? 1;
          for (let i = 0; i < bytes.length; i += 1) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            x >>>= 0;
            bytes[i] = x & 255;
          }
        }
        dt.items.add(new File([bytes], f.name));
      }
      const target = /** @type {HTMLElement} */ (document.querySelector(zone));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    },
    { zone, files },
  );
}

/**
 * The card of the file shown under this plain name.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export function card(page, name) {
  return page.locator('.file-card').filter({ has: page.locator('.file-name', { hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
}

/**
 * Saves a received file through its Save button; resolves to the saved
 * name and bytes.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {number} [wait] how long it may take to arrive (ms)
 */
export async function save(page, name, wait) {
  const c = card(page, name);
  await c.getByText('Received and checked').waitFor({ timeout: wait });
  const [download] = await Promise.all([page.waitForEvent('download'), c.getByRole('button', { name: `Save ${name}` }).click()]);
  return { name: download.suggestedFilename(), bytes: await readFile(await download.path()) };
}
