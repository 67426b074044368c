// @ts-check
/**
 * Safety numbers, for people: the Verify dialog shows our safety number with
 * a member as text and as a QR code, so that two people can compare them
 * out of band (side by side, or over a call they trust), and lets the user
 * mark the member verified. A man in the middle, or a server that served
 * the page bad code, cannot make both sides show the same number.
 * @module
 */

import { drawQr } from './share.js';

const SVG = 'http://www.w3.org/2000/svg';

/**
 * A QR code of `text`, as an SVG element (the room link's encoder and
 * drawing, share.js): dark modules on a light square, whatever the page's
 * colours, so that cameras read it.
 * @param {string} text
 */
export function qrCode(text) {
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(SVG, 'svg'));
  svg.setAttribute('aria-hidden', 'true');
  drawQr(svg, text);
  return svg;
}

/**
 * The Verify dialog's parts, by id.
 * @typedef {{dialog: HTMLDialogElement, title: HTMLElement, help: HTMLElement, number: HTMLElement,
 *   qr: HTMLElement, state: HTMLElement, mark: HTMLButtonElement}} VerifyUi
 */

/**
 * Opens the dialog for a member: computes the safety number (a few
 * thousand hashes, a moment's work) and shows it.
 * @param {VerifyUi} ui
 * @param {import('./room.js').Room} room
 * @param {string} peerId
 * @param {string} nick
 */
export async function openVerify(ui, room, peerId, nick) {
  ui.title.textContent = `Verify ${nick}`;
  ui.help.textContent =
    `Compare this number with the one ${nick} sees for you, side by side or over a call you trust ` +
    `(${nick} can scan the code). If they are the same, nobody is in the middle of your conversation: ` +
    'not the server, not anyone else.';
  ui.number.textContent = 'Working it out…';
  ui.qr.replaceChildren();
  ui.state.textContent = '';
  ui.mark.hidden = true;
  ui.dialog.dataset.peer = peerId;
  if (!ui.dialog.open) ui.dialog.showModal();
  let digits;
  try {
    digits = await room.safetyNumber(peerId);
  } catch (e) {
    ui.number.textContent = '';
    ui.state.textContent = `${nick}’s identity is not known yet: wait until you are connected.`;
    return;
  }
  if (ui.dialog.dataset.peer !== peerId) return;
  ui.number.textContent = digits;
  ui.qr.replaceChildren(qrCode(digits.replace(/ /g, '')));
  showVerified(ui, room, peerId, nick);
}

/**
 * @param {VerifyUi} ui
 * @param {import('./room.js').Room} room
 * @param {string} peerId
 * @param {string} nick
 */
export function showVerified(ui, room, peerId, nick) {
  const identity = room.identities.get(peerId);
  const verified = identity?.verified ?? false;
  ui.mark.hidden = verified;
  ui.state.textContent = verified
    ? `✓ You marked ${nick} as verified.`
    : identity?.changed
      ? `${nick}’s safety number has changed since you last saw them: compare it again before trusting them.`
      : `${nick} is not verified yet.`;
}
