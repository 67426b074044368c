// @ts-check
/**
 * Completing members' nicknames in the message box: typing `@` and the
 * start of a name lists the members it fits; Tab (or Enter, or a click)
 * puts the whole name in, the arrow keys choose, Escape closes the list.
 * The list is a `listbox` the box points to with `aria-activedescendant`,
 * and a polite live hint says how many fit and which keys work.
 * @module
 */

import { fold } from './archive.js';

/** Most names listed at once. */
const MAX_LISTED = 8;
/** A name being completed is at most this long (nicknames are 32 characters at most). */
const MAX_QUERY = 32;

/**
 * The `@name` being typed before the caret, if any: where its `@` is and
 * what follows it (no line break, not right after a letter or digit).
 * @param {string} text
 * @param {number} caret
 * @returns {{start: number, query: string} | null}
 */
export function mentionQuery(text, caret) {
  const from = Math.max(0, caret - MAX_QUERY - 1);
  for (let i = caret - 1; i >= from; i -= 1) {
    const ch = text[i];
    if (ch === '\n') return null;
    if (ch !== '@') continue;
    if (i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1])) return null;
    return { start: i, query: text.slice(i + 1, caret) };
  }
  return null;
}

/**
 * The nicknames `query` is the start of (ignoring case and accents),
 * shortest first, then in alphabetical order; none when the only one is
 * the query itself (nothing left to complete).
 * @param {string} query
 * @param {string[]} nicks
 */
export function candidates(query, nicks) {
  const q = fold(query);
  const found = [...new Set(nicks)]
    .filter((n) => fold(n).startsWith(q))
    .sort((a, b) => a.length - b.length || a.localeCompare(b))
    .slice(0, MAX_LISTED);
  return found.length === 1 && fold(found[0]) === q ? [] : found;
}

/**
 * Wires completion to a message box. Call before the composer is wired,
 * so that Enter and Tab reach the list first while it is open.
 * @param {{box: HTMLTextAreaElement, list: HTMLElement, hint: HTMLElement}} parts
 * @param {() => string[]} nicks the names that can be completed (not ours)
 */
export function wireMentions({ box, list, hint }, nicks) {
  /** @type {{start: number, names: string[], active: number} | null} */
  let open = null;
  /** Set while a completion is put in, so that it does not reopen the list. */
  let completing = false;

  const close = () => {
    if (!open) return;
    open = null;
    list.hidden = true;
    list.replaceChildren();
    box.removeAttribute('aria-activedescendant');
    hint.textContent = '';
  };

  const show = () => {
    if (!open) return;
    const items = open.names.map((name, i) => {
      const li = document.createElement('li');
      li.id = `mention-option-${i}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === open?.active));
      li.textContent = `@${name}`;
      li.addEventListener('pointerdown', (event) => {
        // Keeps the focus (and the caret) in the box.
        event.preventDefault();
        accept(i);
      });
      return li;
    });
    list.replaceChildren(...items);
    list.hidden = false;
    box.setAttribute('aria-activedescendant', `mention-option-${open.active}`);
  };

  const update = () => {
    if (completing) return;
    const caret = box.selectionStart;
    const found = box.selectionEnd === caret ? mentionQuery(box.value, caret) : null;
    const names = found ? candidates(found.query, nicks()) : [];
    if (!found || names.length === 0) {
      close();
      return;
    }
    const was = open?.names[open.active];
    const count = names.length;
    open = { start: found.start, names, active: Math.max(0, names.indexOf(was ?? '')) };
    show();
    hint.textContent = `${count === 1 ? '1 member fits' : `${count} members fit`}: Tab completes, arrow keys choose.`;
  };

  /** @param {number} i */
  const accept = (i) => {
    if (!open) return;
    const name = open.names[i];
    const caret = box.selectionStart;
    const insert = `@${name} `;
    box.setRangeText(insert, open.start, caret, 'end');
    close();
    // Lets the composer resize and note the typing.
    completing = true;
    box.dispatchEvent(new Event('input', { bubbles: true }));
    completing = false;
    hint.textContent = `${name} mentioned.`;
  };

  box.addEventListener('input', update);
  box.addEventListener('click', update);
  box.addEventListener('blur', close);
  box.addEventListener('keyup', (event) => {
    if (event.key === 'ArrowLeft' || event.key === 'ArrowRight' || event.key === 'Home' || event.key === 'End') update();
  });
  box.addEventListener('keydown', (event) => {
    if (!open || event.isComposing) return;
    const n = open.names.length;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      open.active = (open.active + (event.key === 'ArrowDown' ? 1 : n - 1)) % n;
      show();
    } else if (event.key === 'Tab' || (event.key === 'Enter' && !event.shiftKey)) {
      accept(open.active);
    } else if (event.key === 'Escape') {
      close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  });
}
