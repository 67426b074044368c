// @ts-check
/**
 * Inviting people: a dialog with the room link as a QR code (made here,
 * in the page, by the vendored encoder: the server never sees the whole
 * link, which will carry a secret after `#`), the phone's share sheet
 * (`navigator.share`) where there is one, and copying.
 * @module
 */

import { encode } from '../vendor/uqr/index.mjs';
import { copyField } from './clipboard.js';

const SVG = 'http://www.w3.org/2000/svg';
/** Light modules around the code, as the standard asks. */
const QUIET_ZONE = 4;

/**
 * An SVG path drawing the dark modules of a QR code, one unit each.
 * @param {boolean[][]} modules
 */
export function qrPath(modules) {
  /** @type {string[]} */
  const parts = [];
  modules.forEach((row, y) => {
    let x = 0;
    while (x < row.length) {
      if (!row[x]) {
        x += 1;
        continue;
      }
      // A run of dark modules on a row is one rectangle.
      let end = x;
      while (end < row.length && row[end]) end += 1;
      parts.push(`M${x} ${y}h${end - x}v1h${x - end}z`);
      x = end;
    }
  });
  return parts.join('');
}

/**
 * Draws `text` as a QR code into `svg`.
 * @param {SVGSVGElement} svg
 * @param {string} text
 */
export function drawQr(svg, text) {
  const { data, size } = encode(text, { ecc: 'M', border: QUIET_ZONE });
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const background = document.createElementNS(SVG, 'rect');
  background.setAttribute('width', String(size));
  background.setAttribute('height', String(size));
  background.setAttribute('fill', '#ffffff');
  const modules = document.createElementNS(SVG, 'path');
  modules.setAttribute('d', qrPath(data));
  modules.setAttribute('fill', '#000000');
  svg.replaceChildren(background, modules);
}

/**
 * Wires the Share button and its dialog.
 * @param {{button: HTMLButtonElement, dialog: HTMLDialogElement, qr: SVGSVGElement, caption: HTMLElement,
 *   native: HTMLButtonElement, copy: HTMLButtonElement, close: HTMLButtonElement, field: HTMLInputElement}} parts
 *   field: the room link as the page shows it (the whole link, secret included)
 */
export function wireShare({ button, dialog, qr, caption, native, copy, close, field }) {
  button.addEventListener('click', () => {
    const link = field.value;
    drawQr(qr, link);
    caption.textContent = link;
    native.hidden = typeof navigator.share !== 'function' || (navigator.canShare && !navigator.canShare({ url: link }));
    dialog.showModal();
  });
  native.addEventListener('click', async () => {
    try {
      await navigator.share({ title: 'peerchat', text: 'Join me in this peerchat room:', url: field.value });
    } catch (e) {
      // Closing the share sheet is not an error.
      if (!(e instanceof DOMException && e.name === 'AbortError')) console.warn('peerchat: could not share', e);
    }
  });
  copy.addEventListener('click', () => void copyField(field, copy));
  close.addEventListener('click', () => dialog.close());
}
