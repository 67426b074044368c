// @ts-check
/**
 * The Search and Export dialogs: both read the room's history as kept on
 * this device (IndexedDB; where the browser keeps none, what this page
 * holds). Search lists the messages holding every word, newest first, and
 * takes the reader to the one they pick; Export downloads the history as
 * plain text or JSON (formats in archive.js).
 * @module
 */

import { exportJson, exportText, search } from './archive.js';
import { compare, isShown } from './history.js';
import { downloadUrl } from './dom.js';

/** Most results listed. */
const MAX_RESULTS = 100;
/** Characters of a message shown in a result. */
const SNIPPET = 160;

/**
 * @typedef {import('./archive.js').Kept} Kept
 * @typedef {{roomId: string, kept: () => Promise<Kept[]>, reveal: (author: string, seq: number) => boolean}} Source
 *   kept: the history on this device, in the room's order; reveal: takes
 *   the reader to a message in the log
 */

/** @type {Intl.DateTimeFormat | undefined} */
let when;

/**
 * The room's history as this device keeps it, in the room's order.
 * @param {import('./store.js').Store | null} store
 * @param {string} roomId
 * @param {() => Kept[]} fallback what the page holds, without a store
 * @returns {Promise<Kept[]>}
 */
export async function keptHistory(store, roomId, fallback) {
  if (!store) return fallback();
  store.flush(roomId);
  const { messages } = await store.load(roomId);
  // Only what is shown as a message of its own (not edits, reactions, …).
  return messages.filter(isShown).sort(compare);
}

/**
 * @param {{button: HTMLButtonElement, dialog: HTMLDialogElement, form: HTMLFormElement, words: HTMLInputElement,
 *   summary: HTMLElement, results: HTMLElement, close: HTMLButtonElement}} parts
 * @param {Source} source
 */
export function wireSearch({ button, dialog, form, words, summary, results, close }, source) {
  button.addEventListener('click', () => {
    dialog.showModal();
    words.select();
  });
  close.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const query = words.value;
    const all = await source.kept();
    const found = search(all, query, MAX_RESULTS);
    results.replaceChildren(...found.map((m) => result(m, query, () => {
      dialog.close();
      if (!source.reveal(m.author, m.seq)) summary.textContent = 'That message is no longer in the conversation shown.';
    })));
    summary.textContent =
      query.trim() === ''
        ? 'Type words to find.'
        : found.length === 0
          ? `Nothing found among the ${all.length} messages on this device.`
          : `${found.length === MAX_RESULTS ? `The newest ${MAX_RESULTS}` : found.length === 1 ? 'One message' : `${found.length} messages`} of ${all.length} on this device, newest first.`;
  });
}

/**
 * A result: who, when, and the start of the text, as a button that goes
 * to the message.
 * @param {Kept} m
 * @param {string} query
 * @param {() => void} go
 */
function result(m, query, go) {
  when ??= new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const li = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'result';
  const head = document.createElement('span');
  head.className = 'result-head';
  const author = document.createElement('strong');
  author.textContent = m.nick;
  author.dir = 'auto';
  const time = document.createElement('time');
  time.dateTime = new Date(m.ts).toISOString();
  time.textContent = when.format(m.ts);
  head.append(author, ' · ', time);
  const text = document.createElement('span');
  text.className = 'result-text';
  text.dir = 'auto';
  text.textContent = m.text.length > SNIPPET ? `${m.text.slice(0, SNIPPET)}…` : m.text;
  button.append(head, text);
  button.title = `Go to this message (${query.trim()})`;
  button.addEventListener('click', go);
  li.append(button);
  return li;
}

/**
 * @param {{button: HTMLButtonElement, dialog: HTMLDialogElement, summary: HTMLElement,
 *   text: HTMLButtonElement, json: HTMLButtonElement, close: HTMLButtonElement}} parts
 * @param {Source} source
 */
export function wireExport({ button, dialog, summary, text, json, close }, source) {
  button.addEventListener('click', async () => {
    const count = (await source.kept()).length;
    summary.textContent = `Saves this room’s history as kept on this device (${count === 1 ? 'one message' : `${count} messages`}) as a file.`;
    dialog.showModal();
  });
  close.addEventListener('click', () => dialog.close());
  const save = async (/** @type {'txt' | 'json'} */ kind) => {
    const messages = await source.kept();
    const now = Date.now();
    const body = kind === 'txt' ? exportText(source.roomId, messages) : exportJson(source.roomId, messages, now);
    const type = kind === 'txt' ? 'text/plain;charset=utf-8' : 'application/json';
    const stamp = new Date(now - new Date(now).getTimezoneOffset() * 60_000).toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    download(`peerchat-${source.roomId}-${stamp}.${kind}`, new Blob([body], { type }));
    dialog.close();
  };
  text.addEventListener('click', () => void save('txt'));
  json.addEventListener('click', () => void save('json'));
}

/**
 * Offers a file for download.
 * @param {string} name
 * @param {Blob} blob
 */
function download(name, blob) {
  const url = URL.createObjectURL(blob);
  downloadUrl(url, name);
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
