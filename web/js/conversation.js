// @ts-check
/**
 * Replies, reactions, edits and deletions on the room page's messages, and
 * the room's name. What each message shows comes from the message log
 * (`History#entryState`, `History#roomName`: the rules of docs/protocol.md,
 * "Replies, reactions, edits, deletions and the room name"); this module
 * only draws it, with built DOM nodes and `textContent`, and turns the
 * reader's clicks and keys into entries sent through the room.
 *
 * Each message gets a row of actions (Reply, React, and on one's own Edit
 * and Delete), shown on hover or focus, always on touch screens, reachable
 * by keyboard; a reply quotes what it answers (activating the quote jumps to
 * it); reactions are buttons with their counts that toggle one's own.
 * @module
 */

import { parse, render } from './format.js';

/** The reactions offered, with the names screen readers say. */
export const REACTIONS = /** @type {const} */ ([
  ['👍', 'thumbs up'],
  ['❤️', 'heart'],
  ['😂', 'laughing'],
  ['😮', 'surprised'],
  ['😢', 'sad'],
  ['🎉', 'party'],
]);

/** Longest excerpt of a quoted message, in characters. */
const EXCERPT = 90;

/**
 * @param {string} text
 */
function excerpt(text) {
  const line = text.replace(/\s+/gu, ' ').trim();
  const chars = [...line];
  return chars.length > EXCERPT ? `${chars.slice(0, EXCERPT - 1).join('')}…` : line;
}

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function make(tag, className, text) {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * @param {string} className
 * @param {string} text
 * @param {string} label the accessible name
 */
function button(className, text, label) {
  const b = /** @type {HTMLButtonElement} */ (make('button', className, text));
  b.type = 'button';
  if (label !== text) b.setAttribute('aria-label', label);
  return b;
}

/**
 * @typedef {{author: string, seq: number}} Ref
 * @typedef {{kind: 'reply' | 'edit', re: Ref}} Mode
 * @typedef {{log: import('./chatlog.js').ChatLog, room: import('./room.js').Room,
 *   box: HTMLTextAreaElement, context: HTMLElement, contextText: HTMLElement, contextCancel: HTMLButtonElement,
 *   title: HTMLElement, nameButton: HTMLButtonElement, setTitle: (name: string) => void,
 *   notice: (text: string) => void, show: (msg: import('./room.js').ChatMessage) => void}} Parts
 *   `show`: shows a message of ours (a reply) as the page shows messages
 */

export class Conversation {
  /** @param {Parts} parts */
  constructor(parts) {
    this.parts = parts;
    /** @type {Mode | null} what the composer's next send is */
    this.mode = null;
    /** The room's name as shown. */
    this.name = '';
    this.defaultTitle = parts.title.textContent ?? '';
    parts.log.decorate = (item, msg) => this.decorate(item, msg);
    parts.contextCancel.addEventListener('click', () => this.cancel());
    parts.box.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.mode && !event.defaultPrevented) {
        event.preventDefault();
        this.cancel();
      }
    });
    parts.nameButton.addEventListener('click', () => this.askName());
    // Actions, quotes and reactions, for every message, by delegation.
    parts.log.el.addEventListener('click', (event) => this.onClick(event));
    parts.log.el.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      const picker = /** @type {HTMLElement} */ (event.target).closest('.react-picker');
      if (picker instanceof HTMLElement) this.closePicker(picker, true);
    });
  }

  /** Whether the composer's next send is a reply or an edit. */
  get busy() {
    return this.mode !== null;
  }

  /**
   * Sends the composer's text as the reply or edit it is.
   * @param {string} text
   */
  send(text) {
    const mode = this.mode;
    if (!mode) return;
    // Throws (shown under the composer) for what cannot be sent.
    const sent = this.parts.room.about(mode.kind, text, mode.re);
    this.cancel(false);
    void sent.then(
      (m) => {
        if (m.kind !== 'reply') this.applied(m);
      },
      (e) => this.parts.notice(`Not sent: ${/** @type {Error} */ (e).message}`),
    );
    if (mode.kind === 'reply') void sent.then((m) => this.parts.show(viewOf(this.parts.room, m)), () => {});
  }

  /**
   * An entry about another one (or a room name) was added: redraw what it
   * changes.
   * @param {import('./history.js').Message} m
   */
  applied(m) {
    if (m.kind === 'room_name') this.showName(true);
    else if (m.re) this.refresh(m.re);
  }

  /** Redraws every message (an entry was verified or removed), and the name. */
  refreshAll() {
    for (const item of this.parts.log.items()) this.apply(item);
    for (const quote of this.parts.log.el.querySelectorAll('.msg-quote')) this.fillQuote(/** @type {HTMLElement} */ (quote));
    this.showName(false);
  }

  /**
   * Shows the room's name in the heading and the tab's title.
   * @param {boolean} tell say in the log that it changed
   */
  showName(tell) {
    const name = this.parts.room.history.roomName();
    const text = name?.text ?? '';
    if (text === this.name) return;
    this.name = text;
    this.parts.title.textContent = text || this.defaultTitle;
    this.parts.title.classList.toggle('named', text !== '');
    this.parts.title.dir = 'auto';
    this.parts.setTitle(text);
    if (tell && name) {
      const who = name.author === this.parts.room.selfId ? 'You' : name.nick;
      this.parts.notice(text ? `${who} named the room “${text}”.` : `${who} cleared the room’s name.`);
    }
  }

  /** @private */
  askName() {
    const name = prompt('Name this room for everyone in it (leave empty to clear the name):', this.name);
    if (name === null) return;
    try {
      void this.parts.room.about('room_name', name).then(
        (m) => this.applied(m),
        (e) => this.parts.notice(`Not renamed: ${/** @type {Error} */ (e).message}`),
      );
    } catch (e) {
      this.parts.notice(`Not renamed: ${/** @type {Error} */ (e).message}`);
    }
  }

  /**
   * Sets the composer to reply to, or edit, a message.
   * @private
   * @param {Mode} mode
   * @param {string} label what the bar above the composer says
   * @param {string} [text] the composer's text (an edit starts from the message's)
   */
  start(mode, label, text) {
    this.mode = mode;
    this.parts.contextText.textContent = label;
    this.parts.context.hidden = false;
    if (text !== undefined) this.parts.box.value = text;
    this.parts.box.dispatchEvent(new Event('input'));
    this.parts.box.focus();
  }

  /**
   * Back to plain messages.
   * @param {boolean} [clear] empty the composer if it held an edit
   */
  cancel(clear = true) {
    if (clear && this.mode?.kind === 'edit') {
      this.parts.box.value = '';
      this.parts.box.dispatchEvent(new Event('input'));
    }
    this.mode = null;
    this.parts.context.hidden = true;
    this.parts.contextText.textContent = '';
  }

  /**
   * @private
   * @param {MouseEvent} event
   */
  onClick(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    const control = target.closest('button');
    if (!control) return;
    const item = /** @type {HTMLElement | null} */ (control.closest('.msg'));
    if (!item || item.dataset.author === undefined) return;
    const ref = { author: item.dataset.author, seq: Number(item.dataset.seq) };
    const room = this.parts.room;
    const m = room.history.get(ref.author, ref.seq);
    const nick = m?.author === room.selfId ? 'yourself' : (m?.nick ?? 'someone');
    const action = control.dataset.action;
    if (action === 'reply') {
      this.start({ kind: 'reply', re: ref }, `Replying to ${nick}: ${excerpt(this.textOf(ref))}`);
    } else if (action === 'edit') {
      this.start({ kind: 'edit', re: ref }, 'Editing your message', this.textOf(ref));
    } else if (action === 'delete') {
      if (!confirm('Delete this message for everyone?')) return;
      this.sendAbout('delete', '', ref);
    } else if (action === 'react') {
      this.togglePicker(item, control);
    } else if (action === 'emoji' || action === 'reaction') {
      const emoji = control.dataset.emoji ?? '';
      const mine = room.history.entryState(ref.author, ref.seq).reactions.some((r) => r.emoji === emoji && r.by.some(([id]) => id === room.selfId));
      this.sendAbout(mine ? 'unreact' : 'react', emoji, ref);
      const picker = control.closest('.react-picker');
      if (picker instanceof HTMLElement) this.closePicker(picker, true);
    } else if (action === 'quote') {
      const re = item.dataset.re?.split('/');
      if (re && !this.parts.log.reveal(re[0], Number(re[1]))) this.parts.notice('That message is not shown here any more.');
    }
  }

  /**
   * @private
   * @param {import('./protocol.js').EntryKind} kind
   * @param {string} text
   * @param {Ref} re
   */
  sendAbout(kind, text, re) {
    try {
      void this.parts.room.about(kind, text, re).then(
        (m) => this.applied(m),
        (e) => this.parts.notice(`Not sent: ${/** @type {Error} */ (e).message}`),
      );
    } catch (e) {
      this.parts.notice(`Not sent: ${/** @type {Error} */ (e).message}`);
    }
  }

  /**
   * The text a message shows now (its last edit's).
   * @private
   * @param {Ref} ref
   */
  textOf(ref) {
    const history = this.parts.room.history;
    const state = history.entryState(ref.author, ref.seq);
    if (state.deleted) return '';
    return state.text ?? history.get(ref.author, ref.seq)?.text ?? '';
  }

  /**
   * @private
   * @param {HTMLElement} item
   * @param {HTMLButtonElement} opener
   */
  togglePicker(item, opener) {
    const open = item.querySelector('.react-picker');
    if (open instanceof HTMLElement) {
      this.closePicker(open, true);
      return;
    }
    const picker = make('div', 'react-picker');
    picker.setAttribute('role', 'group');
    picker.setAttribute('aria-label', 'Reactions');
    const state = this.parts.room.history.entryState(item.dataset.author ?? '', Number(item.dataset.seq));
    for (const [emoji, name] of REACTIONS) {
      const b = button('emoji', emoji, `React with ${name}`);
      b.dataset.action = 'emoji';
      b.dataset.emoji = emoji;
      const mine = state.reactions.some((r) => r.emoji === emoji && r.by.some(([id]) => id === this.parts.room.selfId));
      b.setAttribute('aria-pressed', String(mine));
      picker.append(b);
    }
    opener.setAttribute('aria-expanded', 'true');
    opener.after(picker);
    /** @type {HTMLElement} */ (picker.firstElementChild).focus();
  }

  /**
   * @private
   * @param {HTMLElement} picker
   * @param {boolean} refocus put the focus back on the React button
   */
  closePicker(picker, refocus) {
    const opener = /** @type {HTMLElement | null} */ (picker.previousElementSibling);
    picker.remove();
    opener?.setAttribute('aria-expanded', 'false');
    if (refocus) opener?.focus();
  }

  /**
   * Adds the actions (and a reply's quote) to a message element as the log
   * makes it, and draws its current state.
   * @private
   * @param {HTMLElement} item
   * @param {import('./chatlog.js').LogMessage} msg
   */
  decorate(item, msg) {
    if (msg.authorId === undefined || msg.seq === undefined) return;
    if (msg.re) {
      item.dataset.re = `${msg.re.author}/${msg.re.seq}`;
      const quote = make('div', 'msg-quote');
      item.querySelector('.msg-text')?.before(quote);
      this.fillQuote(quote);
    }
    const who = msg.own ? 'your message' : `${msg.author}’s message`;
    const actions = make('div', 'msg-actions');
    actions.setAttribute('role', 'group');
    actions.setAttribute('aria-label', `Actions on ${who}`);
    const reply = button('secondary small', 'Reply', msg.own ? 'Reply to your message' : `Reply to ${msg.author}`);
    reply.dataset.action = 'reply';
    const react = button('secondary small', 'React', `React to ${who}`);
    react.dataset.action = 'react';
    react.setAttribute('aria-expanded', 'false');
    actions.append(reply, react);
    if (msg.own) {
      const edit = button('secondary small', 'Edit', 'Edit your message');
      edit.dataset.action = 'edit';
      const del = button('secondary small', 'Delete', 'Delete your message');
      del.dataset.action = 'delete';
      actions.append(edit, del);
    }
    item.append(make('div', 'msg-reactions'), actions);
    this.apply(item);
  }

  /**
   * Redraws the message `re` and the quotes of it.
   * @private
   * @param {Ref} re
   */
  refresh(re) {
    const item = this.parts.log.item(re.author, re.seq);
    if (item) this.apply(item);
    for (const quoted of this.parts.log.el.querySelectorAll(`.msg[data-re="${CSS.escape(`${re.author}/${re.seq}`)}"] .msg-quote`)) {
      this.fillQuote(/** @type {HTMLElement} */ (quoted));
    }
  }

  /**
   * Fills a reply's quote with what it answers, as that shows now.
   * @private
   * @param {HTMLElement} quote
   */
  fillQuote(quote) {
    const item = /** @type {HTMLElement} */ (quote.closest('.msg'));
    const [author, seq] = (item.dataset.re ?? '/').split('/');
    const room = this.parts.room;
    const target = room.history.get(author, Number(seq));
    const who = !target ? '' : target.author === room.selfId ? 'You' : target.nick;
    const state = target ? room.history.entryState(author, Number(seq)) : null;
    const text = !target ? 'A message not kept here' : state?.deleted ? 'Message deleted' : excerpt(state?.text ?? target.text);
    if (!target) {
      quote.replaceChildren(make('span', 'quote-text', text));
      return;
    }
    // Its name is what it shows, said as a sentence.
    const jump = button('quote-jump', '', '');
    jump.dataset.action = 'quote';
    jump.title = 'Go to that message';
    const name = make('span', 'quote-author', who);
    name.dir = 'auto';
    const body = make('span', state?.deleted ? 'quote-text tombstone' : 'quote-text', text);
    body.dir = 'auto';
    jump.append(make('span', 'visually-hidden', 'In reply to '), name, make('span', 'visually-hidden', ': '), body);
    quote.replaceChildren(jump);
  }

  /**
   * Draws a message's edits, deletion and reactions.
   * @private
   * @param {HTMLElement} item
   */
  apply(item) {
    const room = this.parts.room;
    const author = item.dataset.author;
    if (author === undefined) return;
    const seq = Number(item.dataset.seq);
    const state = room.history.entryState(author, seq);
    const m = room.history.get(author, seq);
    const textEl = item.querySelector('.msg-text');
    const meta = item.querySelector('.msg-meta');
    if (!(textEl instanceof HTMLElement) || !meta) return;
    // The text: a tombstone, the last edit's, or (after an edit was found
    // forged) the original again.
    const shown = state.deleted ? 'deleted' : state.edited ? `edit:${state.text}` : 'original';
    if (item.dataset.shown !== shown && (item.dataset.shown !== undefined || shown !== 'original')) {
      item.dataset.shown = shown;
      if (state.deleted) {
        textEl.replaceChildren(make('span', 'tombstone', 'Message deleted'));
        item.classList.add('deleted');
        item.querySelector('.msg-actions')?.remove();
        item.querySelector('.msg-quote')?.remove();
      } else {
        textEl.replaceChildren(render(parse(state.text ?? m?.text ?? '', this.parts.log.mentions)));
      }
    }
    let edited = meta.querySelector('.msg-edited');
    if (state.edited && !edited) {
      edited = make('span', 'msg-edited', 'edited');
      meta.append(edited);
    } else if (!state.edited && edited) edited.remove();
    const row = item.querySelector('.msg-reactions');
    if (!(row instanceof HTMLElement)) return;
    row.replaceChildren(
      ...state.reactions.map(({ emoji, by }) => {
        const names = by.map(([id, nick]) => (id === room.selfId ? 'you' : nick));
        const mine = by.some(([id]) => id === room.selfId);
        const label = `${emoji} ${by.length}: ${names.join(', ')}${mine ? '. Activate to take yours back' : '. Activate to add yours'}`;
        const b = button('reaction', `${emoji} ${by.length}`, label);
        b.dataset.action = 'reaction';
        b.dataset.emoji = emoji;
        b.title = names.join(', ');
        b.setAttribute('aria-pressed', String(mine));
        return b;
      }),
    );
    row.hidden = state.reactions.length === 0;
  }
}

/**
 * A reply of ours as the log shows messages.
 * @param {import('./room.js').Room} room
 * @param {import('./history.js').Message} m
 * @returns {import('./room.js').ChatMessage}
 */
function viewOf(room, m) {
  return { id: m.id, seq: m.seq, clock: m.clock, ts: m.ts, text: m.text, authorId: m.author, author: m.nick, own: m.author === room.selfId, relayedBy: null, re: m.re };
}
