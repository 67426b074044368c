// @ts-check
/**
 * The message box: Enter sends, Shift+Enter starts a new line (on a touch
 * screen, Enter starts a new line and the Send button sends), and a note
 * says when the text is too long. Shared by the room page and the
 * manual-connection page.
 * @module
 */

import { isBlank, MAX_TEXT_BYTES, MAX_TEXT_SIZE, utf8Length } from './protocol.js';

// Browsers that size the box to its text by CSS (`field-sizing`) need no
// script, and so no layout on every key press.
const sizedByCss = CSS.supports('field-sizing', 'content');
/** A touch screen and no mouse: Enter is the keyboard's new-line key there. */
const touchOnly = matchMedia('(hover: none) and (pointer: coarse)');

/**
 * @param {{form: HTMLFormElement, box: HTMLTextAreaElement, note: HTMLElement}} composer
 * @param {(text: string) => void} send sends the text; throws an Error whose
 *   message tells people why it could not
 * @param {() => void} [typed] called as people type
 */
export function wireComposer({ form, box, note }, send, typed) {
  const resize = () => {
    if (sizedByCss) return;
    box.style.height = 'auto';
    box.style.height = `${Math.min(box.scrollHeight + 2, 160)}px`;
  };
  const submit = () => {
    const text = box.value;
    if (isBlank(text)) return;
    try {
      send(text);
    } catch (e) {
      note.textContent = e instanceof Error ? e.message : String(e);
      return;
    }
    box.value = '';
    note.textContent = '';
    resize();
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  const enterKey = () => {
    box.enterKeyHint = touchOnly.matches ? 'enter' : 'send';
  };
  enterKey();
  touchOnly.addEventListener('change', enterKey);
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !touchOnly.matches) {
      event.preventDefault();
      submit();
    }
  });
  box.addEventListener('input', () => {
    resize();
    if (typed && !isBlank(box.value)) typed();
    const size = utf8Length(box.value);
    note.textContent =
      size > MAX_TEXT_BYTES
        ? `Too long: ${(size / 1024).toFixed(1)} KiB of at most ${MAX_TEXT_SIZE}. Shorten it or split it.`
        : '';
  });
}
