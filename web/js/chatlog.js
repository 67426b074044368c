// @ts-check
/**
 * The chat log as people see it: messages and notices, appended with
 * `textContent` only, following the end of the conversation unless the
 * reader scrolled back. Shared by the room page and the manual-connection
 * page.
 * @module
 */

/** @type {{short: Intl.DateTimeFormat, full: Intl.DateTimeFormat} | undefined} */
let formats;

/**
 * The time formats, made once: a formatter costs far more to create than to
 * use, and the first one a page makes costs tens of milliseconds (the
 * locale's data loads), so it is not made while the page loads.
 */
function timeFormats() {
  formats ??= {
    short: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }),
    full: new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }),
  };
  return formats;
}

/**
 * A stable hue for a nickname, so each person keeps one colour.
 * @param {string} nick
 */
export function hue(nick) {
  let h = 0;
  for (const ch of nick) h = (h * 31 + /** @type {number} */ (ch.codePointAt(0))) % 360;
  return h;
}

/**
 * A message to show. With `authorId`, `seq` and `clock`, it is placed in
 * the room's order (clock, then author id, then number), so history that
 * arrives late lands where it belongs.
 * @typedef {{id: string, ts: number, text: string, author: string, own: boolean,
 *   authorId?: string, seq?: number, clock?: number}} LogMessage
 * @typedef {{state: string, text: string, detail: string}} Status
 */

/**
 * Whether message element `el` sorts after `msg`.
 * @param {HTMLElement} el
 * @param {LogMessage} msg
 */
function after(el, msg) {
  const clock = Number(el.dataset.clock);
  if (clock !== msg.clock) return clock > /** @type {number} */ (msg.clock);
  const author = el.dataset.author ?? '';
  const authorId = msg.authorId ?? '';
  if (author !== authorId) return author > authorId;
  return Number(el.dataset.seq) > /** @type {number} */ (msg.seq);
}

export class ChatLog {
  /** @param {HTMLElement} el the element with `role="log"` */
  constructor(el) {
    this.el = el;
    // Ready before the first message needs them, without delaying the page.
    if ('requestIdleCallback' in window) requestIdleCallback(() => timeFormats(), { timeout: 2000 });
    // Whether the log is scrolled to (near) its end. Read from the layout
    // only when the reader scrolls, so appending never forces a layout: the
    // scroll to the end waits for the next frame, once per frame.
    this.atBottom = true;
    this.scrollQueued = false;
    /** @type {Map<string, HTMLElement>} ordered messages, by author id and number */
    this.byKey = new Map();
    el.addEventListener('scroll', () => {
      this.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    });
  }

  /**
   * @private
   * @param {HTMLElement} item
   * @param {boolean} force scroll to it even if the reader scrolled back
   * @param {Element | null} [before] the element to insert it before; the end if null
   */
  append(item, force, before = null) {
    this.el.insertBefore(item, before);
    if ((force || this.atBottom) && !this.scrollQueued) {
      this.scrollQueued = true;
      requestAnimationFrame(() => {
        this.scrollQueued = false;
        this.el.scrollTop = this.el.scrollHeight;
        this.atBottom = true;
      });
    }
  }

  /** @param {string} text */
  notice(text) {
    const item = document.createElement('p');
    item.className = 'notice';
    item.textContent = text;
    this.append(item, false);
  }

  /** Empties the log. */
  clear() {
    this.el.replaceChildren();
    this.byKey.clear();
  }

  /**
   * Shows a message, once: at its place in the order if it has one, else
   * at the end.
   * @param {LogMessage} msg
   * @param {Status} [status] for our own messages: where delivery stands
   */
  message(msg, status) {
    const key = msg.clock === undefined ? null : `${msg.authorId}/${msg.seq}`;
    if (key !== null && this.byKey.has(key)) return;
    const item = document.createElement('article');
    item.className = msg.own ? 'msg own' : 'msg';
    item.dataset.id = msg.id;
    const meta = document.createElement('header');
    meta.className = 'msg-meta';
    const author = document.createElement('span');
    author.className = 'msg-author';
    author.textContent = msg.own ? 'You' : msg.author;
    if (!msg.own) author.style.color = `hsl(${hue(msg.author)} 55% 42%)`;
    const time = document.createElement('time');
    time.className = 'msg-time';
    const date = new Date(msg.ts);
    time.dateTime = date.toISOString();
    const { short, full } = timeFormats();
    time.textContent = short.format(date);
    time.title = full.format(date);
    meta.append(author, time);
    if (status) {
      const state = document.createElement('span');
      state.className = 'msg-status';
      meta.append(state);
    }
    const text = document.createElement('p');
    text.className = 'msg-text';
    text.textContent = msg.text;
    item.append(meta, text);
    /** @type {Element | null} */
    let before = null;
    if (key !== null) {
      item.dataset.clock = String(msg.clock);
      item.dataset.author = msg.authorId ?? '';
      item.dataset.seq = String(msg.seq);
      this.byKey.set(key, item);
      // Usually the newest: look from the end for the first that sorts after.
      let el = this.el.lastElementChild;
      while (el) {
        const html = /** @type {HTMLElement} */ (el);
        if (html.dataset.clock !== undefined) {
          if (!after(html, msg)) break;
          before = el;
        }
        el = el.previousElementSibling;
      }
    }
    this.append(item, msg.own, before);
    if (status && msg.authorId !== undefined && msg.seq !== undefined) this.setStatus(msg.authorId, msg.seq, status);
  }

  /**
   * Updates where delivery of one of our messages stands.
   * @param {string} authorId
   * @param {number} seq
   * @param {Status} status
   */
  setStatus(authorId, seq, status) {
    const el = this.byKey.get(`${authorId}/${seq}`)?.querySelector('.msg-status');
    if (!(el instanceof HTMLElement) || (el.dataset.state === status.state && el.textContent === status.text)) return;
    el.dataset.state = status.state;
    el.textContent = status.text;
    el.title = status.detail;
  }
}
