// @ts-check
/**
 * The chat log as people see it: messages and notices, appended with
 * `textContent` only, following the end of the conversation unless the
 * reader scrolled back. Shared by the room page and the manual-connection
 * page.
 * @module
 */

// Made once: a formatter costs far more to create than to use.
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/**
 * A stable hue for a nickname, so each person keeps one colour.
 * @param {string} nick
 */
export function hue(nick) {
  let h = 0;
  for (const ch of nick) h = (h * 31 + /** @type {number} */ (ch.codePointAt(0))) % 360;
  return h;
}

/** @typedef {{id: string, ts: number, text: string, author: string, own: boolean}} LogMessage */

export class ChatLog {
  /** @param {HTMLElement} el the element with `role="log"` */
  constructor(el) {
    this.el = el;
    // Whether the log is scrolled to (near) its end. Read from the layout
    // only when the reader scrolls, so appending never forces a layout: the
    // scroll to the end waits for the next frame, once per frame.
    this.atBottom = true;
    this.scrollQueued = false;
    el.addEventListener('scroll', () => {
      this.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    });
  }

  /**
   * @private
   * @param {HTMLElement} item
   * @param {boolean} force scroll to it even if the reader scrolled back
   */
  append(item, force) {
    this.el.append(item);
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

  /** @param {LogMessage} msg */
  message(msg) {
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
    time.textContent = timeFormat.format(date);
    time.title = fullTimeFormat.format(date);
    meta.append(author, time);
    const text = document.createElement('p');
    text.className = 'msg-text';
    text.textContent = msg.text;
    item.append(meta, text);
    this.append(item, msg.own);
  }
}
