// @ts-check
/**
 * Files in the page: the "Attach file" button, dropping files onto a
 * conversation and pasting an image, and the card each offer shows in the
 * log: its plain name, size and type at once, a progress bar (bytes and
 * rate) while it arrives, "stalled" when nothing comes, then Save (and a
 * preview for images recognised by their content); the sender sees how far
 * each member is and can cancel. Built from DOM nodes, text with
 * `textContent` only.
 * @module
 */

import { downloadUrl } from './dom.js';
import { sanitize } from './transfer.js';

/**
 * @typedef {import('./files.js').Files} Files
 * @typedef {import('./protocol.js').FileMeta} FileMeta
 */

/** @param {number} bytes */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class FileCards {
  /**
   * @param {Files} files
   * @param {(peer: string) => string} nickOf
   */
  constructor(files, nickOf) {
    this.files = files;
    this.nickOf = nickOf;
    /** @type {Map<string, Set<HTMLElement>>} the cards of each file, by fid */
    this.cards = new Map();
    /** @type {Set<string>} files whose cards wait for the next frame */
    this.dirty = new Set();
    files.addEventListener('transfer', (e) => {
      this.dirty.add(/** @type {CustomEvent} */ (e).detail.fid);
      if (this.dirty.size === 1) requestAnimationFrame(() => this.flush());
    });
  }

  /** @private */
  flush() {
    for (const fid of this.dirty) for (const card of this.cards.get(fid) ?? []) this.update(card, fid);
    this.dirty.clear();
  }

  /**
   * Puts the card of the offer `meta` in a message's text element.
   * @param {HTMLElement} into
   * @param {FileMeta} meta
   * @param {boolean} own whether we offered it
   */
  card(into, meta, own) {
    const card = el('div', 'file-card');
    card.dataset.fid = meta.fid;
    card.dataset.own = own ? '1' : '';
    // Our own offers' types come from their content (transfer.js).
    card.dataset.image = /^image\/(png|jpeg|gif|webp)$/.test(meta.type) ? '1' : '';
    const name = el('bdi', 'file-name', sanitize(meta.name));
    name.setAttribute('dir', 'ltr');
    const facts = el('span', 'file-facts', `${formatSize(meta.size)} · ${meta.type}`);
    const head = el('div', 'file-head');
    head.append(name, facts);
    const bar = el('div', 'file-bar');
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-label', `${sanitize(meta.name)}: transfer`);
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', String(meta.size));
    bar.append(el('span', 'file-fill'));
    const state = el('p', 'file-state');
    state.setAttribute('aria-live', 'polite');
    const actions = el('div', 'file-actions');
    const preview = el('div', 'file-preview');
    card.append(head, bar, state, actions, preview);
    into.replaceChildren(card);
    let set = this.cards.get(meta.fid);
    if (!set) {
      set = new Set();
      this.cards.set(meta.fid, set);
    }
    set.add(card);
    this.update(card, meta.fid);
  }

  /**
   * @private
   * @param {HTMLElement} card
   * @param {string} fid
   */
  update(card, fid) {
    if (!card.isConnected && card.dataset.shown) {
      this.cards.get(fid)?.delete(card);
      return;
    }
    card.dataset.shown = '1';
    const status = this.files.status(fid);
    const bar = /** @type {HTMLElement} */ (card.querySelector('.file-bar'));
    const fill = /** @type {HTMLElement} */ (card.querySelector('.file-fill'));
    const state = /** @type {HTMLElement} */ (card.querySelector('.file-state'));
    const actions = /** @type {HTMLElement} */ (card.querySelector('.file-actions'));
    const name = card.querySelector('.file-name')?.textContent ?? 'file';
    let line = '';
    /** @type {HTMLElement[]} */
    const buttons = [];
    const button = (/** @type {string} */ text, /** @type {string} */ label, /** @type {() => void} */ act, secondary = true) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = secondary ? 'secondary small-inline file-button' : 'small-inline file-button';
      b.textContent = text;
      b.setAttribute('aria-label', `${text} ${name}`);
      b.title = label;
      b.addEventListener('click', act);
      buttons.push(b);
    };
    if (status === null) {
      bar.hidden = true;
      // Our own offer from before a reload: the page no longer has the file.
      line = card.dataset.own
        ? 'You offered it from this device before the page was reloaded; those who have it pass it on.'
        : 'Not available on this device.';
    } else if (status.kind === 'in') {
      const s = status.state;
      const size = Math.max(1, status.size);
      bar.hidden = s === 'complete' || s === 'waiting' || (typeof s === 'object' && !('stalled' in s));
      bar.setAttribute('aria-valuenow', String(status.bytes));
      bar.setAttribute('aria-valuetext', `${formatSize(status.bytes)} of ${formatSize(status.size)}`);
      fill.style.transform = `scaleX(${Math.min(1, status.bytes / size)})`;
      card.dataset.state = typeof s === 'string' ? s : Object.keys(s)[0];
      if (s === 'waiting') {
        line = `${formatSize(status.size)}: accept to download it.`;
        button('Accept', 'Download this file', () => this.files.accept(fid), false);
        button('Decline', 'Do not download it', () => this.files.cancel(fid));
      } else if (s === 'fetching' || s === 'checking') {
        const rate = status.rate > 0 ? ` · ${formatSize(status.rate)}/s` : '';
        line = `${formatSize(status.bytes)} of ${formatSize(status.size)}${rate}`;
        button('Cancel', 'Stop downloading it', () => this.files.cancel(fid));
      } else if (typeof s === 'object' && 'stalled' in s) {
        line = `Stalled at ${formatSize(status.bytes)} of ${formatSize(status.size)}: waiting for someone who has it.`;
        button('Cancel', 'Stop downloading it', () => this.files.cancel(fid));
      } else if (s === 'complete') {
        line = `Received and checked (${formatSize(status.size)}).`;
        button('Save', 'Save it on this device', () => void this.save(fid, name), false);
        void this.showPreview(card, fid, status.preview === true);
      } else if (typeof s === 'object' && 'failed' in s) {
        line = 'It did not arrive intact (its content does not match the offer), so it cannot be saved.';
      } else if (typeof s === 'object' && 'cancelled' in s) {
        line = s.cancelled === 'author' ? 'The sender cancelled it.' : 'Cancelled.';
      }
    } else {
      bar.hidden = true;
      const parts = status.members.map(({ peer, bytes }) => {
        const size = Number(/** @type {HTMLElement} */ (bar).getAttribute('aria-valuemax'));
        return `${this.nickOf(peer)} ${size === 0 ? 100 : Math.round((100 * Math.min(bytes, size)) / size)}%`;
      });
      line = !status.held
        ? 'You cancelled it.'
        : parts.length === 0
          ? 'Offered; nobody has fetched it yet.'
          : `Sent: ${parts.join(', ')}`;
      if (status.held) {
        button('Cancel', 'Stop sending it', () => this.files.cancel(fid));
        void this.showPreview(card, fid, card.dataset.image === '1');
      }
    }
    // Only what changed is touched: progress comes several times a second.
    if (state.textContent !== line) state.textContent = line;
    const labels = buttons.map((b) => b.textContent).join('\n');
    if (card.dataset.buttons !== labels) {
      card.dataset.buttons = labels;
      actions.replaceChildren(...buttons);
    }
  }

  /**
   * Shows an image held whole, once (object URL; never SVG: only types
   * recognised by their first bytes).
   * @private
   * @param {HTMLElement} card
   * @param {string} fid
   * @param {boolean} image
   */
  async showPreview(card, fid, image) {
    const preview = /** @type {HTMLElement} */ (card.querySelector('.file-preview'));
    if (!image || preview.childElementCount > 0) return;
    const url = await this.files.url(fid);
    if (!url || preview.childElementCount > 0) return;
    const img = document.createElement('img');
    img.src = url;
    img.alt = `Image: ${card.querySelector('.file-name')?.textContent ?? ''}`;
    img.className = 'file-image';
    preview.append(img);
  }

  /**
   * Saves a file held whole under its plain name.
   * @private
   * @param {string} fid
   * @param {string} name
   */
  async save(fid, name) {
    const url = await this.files.url(fid);
    if (url) downloadUrl(url, name);
  }
}

/**
 * The composer's ways in: the Attach button and its file input, files
 * dropped on `zone`, images pasted into `box`.
 * @param {{button: HTMLButtonElement, input: HTMLInputElement, zone: HTMLElement, box: HTMLElement}} parts
 * @param {(file: File) => void} offer
 */
export function wireAttach({ button, input, zone, box }, offer) {
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    for (const file of input.files ?? []) offer(file);
    input.value = '';
  });
  zone.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    zone.classList.add('dropping');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dropping'));
  zone.addEventListener('drop', (event) => {
    zone.classList.remove('dropping');
    const files = event.dataTransfer?.files;
    if (!files || files.length === 0) return;
    event.preventDefault();
    for (const file of files) offer(file);
  });
  box.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files ?? [])].filter((f) => f.type.startsWith('image/'));
    if (files.length === 0) return;
    event.preventDefault();
    for (const file of files) offer(file);
  });
}
