// @ts-check
/**
 * The page's private conversations: a "Private message" button per other
 * member (with its unread count), and a view per conversation with its own
 * log, typing line and message box ("Private message to NICK"), in place
 * of the room's conversation while it is open. Text goes in with
 * `textContent` only (the log renders as the room's does).
 * @module
 */

import { ChatLog } from './chatlog.js';
import { isShown } from './history.js';
import { wireComposer } from './composer.js';
import { wireAttach } from './fileview.js';

/**
 * @typedef {import('./room.js').Room} Room
 * @typedef {import('./room.js').ChatMessage} ChatMessage
 * @typedef {{pane: HTMLElement, log: ChatLog, undelivered: Set<number>}} Pane
 * @typedef {{room: HTMLElement, view: HTMLElement, back: HTMLButtonElement, title: HTMLElement,
 *   logs: HTMLElement, typing: HTMLElement, form: HTMLFormElement, box: HTMLTextAreaElement,
 *   label: HTMLElement, note: HTMLElement, attach: HTMLButtonElement, attachInput: HTMLInputElement}} Parts
 */

export class PrivateView {
  /**
   * @param {Room} room
   * @param {Parts} parts
   * @param {{changed: () => void, arrived: (msg: ChatMessage) => void, notice: (text: string) => void,
   *   file: (log: ChatLog, peer: string, msg: ChatMessage) => void,
   *   offer: (file: File, peer: string) => Promise<ChatMessage>, roomShown?: (shown: boolean) => void}} hooks
   *   changed: the unread counts changed (render the member list again);
   *   roomShown: the room's conversation is in view again (true) or gave
   *   way to a private one (false);
   *   arrived: a message from someone else landed in a conversation not in view;
   *   file: a file offer was shown (put its card in); offer: offers a file to one member
   */
  constructor(room, parts, hooks) {
    this.room = room;
    this.parts = parts;
    this.hooks = hooks;
    /** @type {Map<string, Pane>} */
    this.panes = new Map();
    /** @type {string | null} the peer whose conversation is open */
    this.current = null;
    this.refreshQueued = false;

    parts.back.addEventListener('click', () => this.close());
    parts.view.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !event.defaultPrevented) this.close();
    });
    wireComposer(
      { form: parts.form, box: parts.box, note: parts.note },
      (text) => {
        const peer = this.current;
        if (!peer || !room.privates) throw new Error('No private conversation is open.');
        void room.privates.send(peer, text).then(
          (m) => this.show(peer, m),
          (e) => this.pane(peer).log.notice(`Not sent: ${/** @type {Error} */ (e).message}`),
        );
      },
      () => {
        if (this.current) room.privates?.typed(this.current);
      },
    );
    wireAttach({ button: parts.attach, input: parts.attachInput, zone: parts.view, box: parts.box }, (file) => {
      const peer = this.current;
      if (!peer) return;
      void hooks.offer(file, peer).then(
        (m) => this.show(peer, m),
        (e) => this.pane(peer).log.notice(`${file.name} was not sent: ${/** @type {Error} */ (e).message}`),
      );
    });
    room.addEventListener('private-message', (e) => {
      const { peer, message } = /** @type {CustomEvent} */ (e).detail;
      this.show(peer, message);
      if (!message.own && !this.isOpen(peer)) hooks.arrived(message);
    });
    room.addEventListener('private-unread', (e) => {
      const { peer } = /** @type {CustomEvent} */ (e).detail;
      if (this.isOpen(peer)) room.privates?.markRead(peer);
      hooks.changed();
    });
    room.addEventListener('private-delivery', (e) => this.refreshSoon(/** @type {CustomEvent} */ (e).detail.peer));
    room.addEventListener('private-typing', (e) => {
      if (/** @type {CustomEvent} */ (e).detail.peer === this.current) this.renderTyping();
    });
    room.addEventListener('members', () => {
      if (this.current) this.renderTitle(this.current);
      for (const peer of this.panes.keys()) this.refreshSoon(peer);
    });
  }

  /**
   * Shows the conversations kept on this device.
   * @param {Array<{peer: string, messages: ChatMessage[]}>} kept
   */
  restore(kept) {
    for (const { peer, messages } of kept) {
      // What came after the reader's mark gets a "New since you left"
      // divider, where the conversation opens.
      this.pane(peer).log.setSeen(this.room.privates?.readMark(peer) ?? null);
      for (const m of messages) this.show(peer, m);
    }
    // The unread counts worked out from the marks.
    if (kept.length > 0) this.hooks.changed();
  }

  /**
   * Empties every conversation's log (the history of the room on this
   * device was cleared).
   */
  clear() {
    for (const pane of this.panes.values()) {
      pane.log.clear();
      pane.log.setSeen(null);
      pane.undelivered.clear();
    }
    this.hooks.changed();
  }

  /**
   * Whether the conversation with `peer` is open and the page visible.
   * @param {string} peer
   */
  isOpen(peer) {
    return this.current === peer && document.visibilityState === 'visible';
  }

  /**
   * The "Private message" button of a member, with its unread count.
   * @param {string} peer
   * @param {string} nick
   */
  button(peer, nick) {
    const unread = this.room.privates?.unread(peer) ?? 0;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary member-private';
    button.dataset.peer = peer;
    // Named by its text (so that what it says is what it is called):
    // "Private message with bob 2 unread", the name and "unread" unseen.
    const hidden = (/** @type {string} */ text) => {
      const span = document.createElement('span');
      span.className = 'visually-hidden';
      span.textContent = text;
      return span;
    };
    button.append('Private message', hidden(` with ${nick}`));
    if (unread > 0) {
      const count = document.createElement('span');
      count.className = 'unread';
      count.textContent = String(unread);
      button.append(' ', count, hidden(' unread'));
    }
    if (this.current === peer) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => this.open(peer));
    return button;
  }

  /**
   * Shows in `el` how many private messages are unread, all conversations
   * together (on the member list's summary, seen when it is folded away).
   * @param {HTMLElement} el
   */
  renderUnread(el) {
    const privates = this.room.privates;
    const total = privates ? privates.peers().reduce((n, peer) => n + privates.unread(peer), 0) : 0;
    el.hidden = total === 0;
    el.textContent = total === 0 ? '' : `${total} unread`;
    el.title = total === 0 ? '' : `${total} unread private ${total === 1 ? 'message' : 'messages'}`;
  }

  /**
   * Opens the conversation with `peer` in place of the room's.
   * @param {string} peer
   */
  open(peer) {
    const pane = this.pane(peer);
    this.current = peer;
    for (const p of this.panes.values()) p.pane.hidden = p !== pane;
    this.parts.room.hidden = true;
    this.parts.view.hidden = false;
    this.renderTitle(peer);
    this.renderTyping();
    this.parts.note.textContent = '';
    // At the divider if there is one to show, else at the end.
    if (!pane.log.anchor) pane.log.toEnd();
    this.hooks.roomShown?.(false);
    this.room.privates?.markRead(peer);
    this.hooks.changed();
    this.parts.box.focus();
  }

  /** Back to the room's conversation. */
  close() {
    if (this.current === null) return;
    this.current = null;
    this.parts.view.hidden = true;
    this.parts.room.hidden = false;
    this.hooks.roomShown?.(true);
    this.hooks.changed();
  }

  /**
   * The page came back into view: what arrived meanwhile in the open
   * conversation is read now.
   */
  visible() {
    if (this.current && document.visibilityState === 'visible') this.room.privates?.markRead(this.current);
  }

  /**
   * @private
   * @param {string} peer
   */
  renderTitle(peer) {
    const nick = this.room.nickOf(peer);
    const away = this.room.members.has(peer) ? '' : ' (left the room)';
    this.parts.title.textContent = `Private conversation with ${nick}${away}`;
    this.parts.label.textContent = `Private message to ${nick}`;
    this.parts.box.placeholder = `Private message to ${nick}…`;
    this.pane(peer).log.el.setAttribute('aria-label', `Private messages with ${nick}`);
  }

  /** @private */
  renderTyping() {
    const peer = this.current;
    this.parts.typing.textContent =
      peer && this.room.privates?.isTyping(peer) ? `${this.room.nickOf(peer)} is typing…` : '';
  }

  /**
   * The pane of the conversation with `peer`, made on first use.
   * @private
   * @param {string} peer
   * @returns {Pane}
   */
  pane(peer) {
    let pane = this.panes.get(peer);
    if (pane) return pane;
    const wrap = document.createElement('div');
    wrap.className = 'private-pane';
    wrap.dataset.peer = peer;
    wrap.hidden = this.current !== peer;
    const el = document.createElement('div');
    el.className = 'log';
    el.setAttribute('role', 'log');
    el.tabIndex = 0;
    el.setAttribute('aria-label', `Private messages with ${this.room.nickOf(peer)}`);
    wrap.append(el);
    this.parts.logs.append(wrap);
    const log = new ChatLog(el);
    const undelivered = new Set();
    // A window of the conversation kept here, moving as the reader scrolls.
    log.setSource({
      messages: () => this.room.privates?.conversations.get(peer)?.messages().filter(isShown) ?? [],
      entry: (/** @type {import('./history.js').Message} */ m) => {
        const msg = this.room.view(m);
        return msg.own ? { msg, status: this.room.privates?.delivery(peer, msg.seq) } : { msg };
      },
    });
    log.paged = (drawn) => {
      const msg = /** @type {ChatMessage} */ (drawn);
      this.hooks.file(log, peer, msg);
      if (msg.own) undelivered.add(msg.seq);
    };
    log.notice(`Only you and ${this.room.nickOf(peer)} see this conversation.`);
    pane = { pane: wrap, log, undelivered };
    this.panes.set(peer, pane);
    return pane;
  }

  /**
   * Shows an entry of the conversation with `peer`.
   * @param {string} peer
   * @param {ChatMessage} msg
   */
  show(peer, msg) {
    const pane = this.pane(peer);
    if (!msg.own) {
      pane.log.message(msg);
      this.hooks.file(pane.log, peer, msg);
      return;
    }
    const status = this.room.privates?.delivery(peer, msg.seq);
    pane.log.message(msg, status);
    this.hooks.file(pane.log, peer, msg);
    if (status && status.state !== 'delivered') pane.undelivered.add(msg.seq);
    if (pane.undelivered.size > 1000) pane.undelivered.delete(Math.min(...pane.undelivered));
  }

  /**
   * Refreshes our messages' delivery states in `peer`'s conversation, once
   * a frame.
   * @private
   * @param {string} peer
   */
  refreshSoon(peer) {
    const pane = this.panes.get(peer);
    if (!pane || pane.undelivered.size === 0) return;
    requestAnimationFrame(() => {
      for (const seq of pane.undelivered) {
        const status = this.room.privates?.delivery(peer, seq);
        if (!status) continue;
        pane.log.setStatus(this.room.selfId, seq, status);
        if (status.state === 'delivered') pane.undelivered.delete(seq);
      }
    });
  }
}
