// @ts-check
/**
 * The chat log as people see it: messages and notices, appended with
 * `textContent` only. It follows the end of the conversation while the
 * reader is there; a reader who scrolled back is left in place and offered
 * a "↓ N new messages" button; a reader who comes back finds a "New since
 * you left" divider, with the view at it.
 *
 * The page holds a bounded window of the conversation, so a long or
 * flooded one costs a bounded amount of memory and layout. With a
 * {@link Source} (the history kept on this device), the window moves: a
 * reader near its top gets the previous page of kept messages above (the
 * view stays on what they were reading), and pages far below are dropped
 * meanwhile, to be drawn again on the way back down; "Beginning of this
 * conversation on this device" marks the real start. Without one (the
 * manual-connection page), the oldest messages go past the limit.
 * Shared by the room page and the manual-connection page.
 * @module
 */

import { mentionsSelf, parse, render } from './format.js';
import { colourOf, Names } from './names.js';

/** @type {{short: Intl.DateTimeFormat, full: Intl.DateTimeFormat, day: Intl.DateTimeFormat, dayYear: Intl.DateTimeFormat} | undefined} */
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
    day: new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' }),
    dayYear: new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }),
  };
  return formats;
}

/**
 * A message to show. With `authorId`, `seq` and `clock`, it is placed in
 * the room's order (clock, then author id, then number), so history that
 * arrives late lands where it belongs.
 * @typedef {{id: string, ts: number, text: string, author: string, own: boolean,
 *   authorId?: string, seq?: number, clock?: number, relayedBy?: string | null,
 *   re?: {author: string, seq: number}}} LogMessage
 *   `relayedBy`: shown as "relayed by X, not yet verified"; `re`: the entry a
 *   reply answers
 * @typedef {{state: string, text: string, detail: string}} Status
 * @typedef {{clock: number, author: string, seq: number}} OrderKey
 * @typedef {{msg: LogMessage, status?: Status}} Entry a kept message to draw
 * @typedef {{messages: () => readonly OrderKey[], entry: (m: any) => Entry}} Source
 *   the messages kept on this device that the log shows, in the room's
 *   order (`messages`), and how one is drawn (`entry`, given one of them)
 * @typedef {{limit?: number, window?: number, page?: number}} Options
 *   limit: most messages in the page without a source (the history's
 *   capacity); window: most with one; page: how many come in at a time
 */

/** Most messages in the page when it has a source. */
export const WINDOW = 200;
/** Messages drawn at a time when the reader nears an edge of the window. */
export const PAGE = 50;
/** How close to the top or bottom (px) brings the next page in. */
const NEAR_EDGE_PX = 600;

/** How close to the end (px) still counts as at the end. */
const NEAR_END_PX = 80;
/** Most notices kept in the page. */
const MAX_NOTICES = 200;
/**
 * More messages than this arriving at once (history from the others, or
 * from this device) are not read out one by one: the log is marked busy
 * while they land, and one sentence says how many came.
 */
const MAX_ANNOUNCED = 3;
/** The busy mark stays this long after the last batch (ms). */
const QUIET_MS = 600;

/**
 * The local calendar day of a timestamp, as `YYYY-M-D`.
 * @param {number} ts
 */
export function dayOf(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/**
 * How a day separator reads: "Today", "Yesterday", or the date (with the
 * year when it is not this one).
 * @param {number} ts
 * @param {number} now
 */
export function dayLabel(ts, now) {
  const day = dayOf(ts);
  if (day === dayOf(now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(yesterday.getDate() - 1);
  if (day === dayOf(yesterday.getTime())) return 'Yesterday';
  const { day: format, dayYear } = timeFormats();
  return (new Date(ts).getFullYear() === new Date(now).getFullYear() ? format : dayYear).format(ts);
}

/**
 * Whether element `el` (a message or the divider) sorts after `key`.
 * @param {HTMLElement} el
 * @param {OrderKey} key
 */
function after(el, key) {
  const clock = Number(el.dataset.clock);
  if (clock !== key.clock) return clock > key.clock;
  const author = el.dataset.author ?? '';
  if (author !== key.author) return author > key.author;
  return Number(el.dataset.seq) > key.seq;
}

/**
 * @param {LogMessage} msg
 * @returns {OrderKey | null}
 */
function keyOf(msg) {
  if (msg.clock === undefined || msg.seq === undefined) return null;
  return { clock: msg.clock, author: msg.authorId ?? '', seq: msg.seq };
}

export class ChatLog {
  /**
   * @param {HTMLElement} el the element with `role="log"`
   * @param {Options} [options]
   */
  constructor(el, { limit = 1000, window = WINDOW, page = PAGE } = {}) {
    this.el = el;
    this.limit = limit;
    this.window = window;
    this.pageSize = page;
    /** @type {Source | null} the kept messages beyond the window */
    this.source = null;
    /** Whether kept messages newer than the window's last are not drawn (the reader is far up). */
    this.newerHidden = false;
    /** Whether a page is on its way in. */
    this.loading = false;
    /** Whether that page is above. */
    this.loadingOlder = false;
    /** @type {HTMLElement | null} the top of the log: loading older messages, or the beginning */
    this.edge = null;
    /**
     * Called with each message drawn from the source as the window moves
     * (a file offer's card, say).
     * @type {((msg: LogMessage) => void) | null}
     */
    this.paged = null;
    /** Tells look-alike names apart. */
    this.names = new Names();
    // Ready before the first message needs them, without delaying the page.
    if ('requestIdleCallback' in globalThis) requestIdleCallback(() => timeFormats(), { timeout: 2000 });
    /**
     * Whether the reader is at (near) the end. Read from the layout only
     * when the reader scrolls, so appending never forces a layout: the
     * scroll to the end waits for the next frame, once per frame.
     */
    this.atBottom = true;
    this.frameQueued = false;
    /** Where the view was last put (scrollTop), by us. */
    this.placedAt = 0;
    /** @type {HTMLElement | null} the "New since you left" divider, while the view holds on to it */
    this.anchor = null;
    /** @type {OrderKey | null} the newest message the reader had when they left */
    this.seen = null;
    /** @type {HTMLElement | null} */
    this.divider = null;
    /** Messages that arrived below the view while the reader was scrolled back. */
    this.unseen = 0;
    /** @type {Map<string, HTMLElement>} ordered messages, by author id and number */
    this.byKey = new Map();
    this.notices = 0;
    /** @type {import('./format.js').MentionMatcher | undefined} who can be mentioned */
    this.mentions = undefined;
    /** @type {Set<HTMLElement>} messages added since the day separators were last put right */
    this.daysDirty = new Set();
    /** The day the separators' labels were written on. */
    this.labelledOn = dayOf(Date.now());
    /** Messages added in the current task (announced one by one only if few). */
    this.burst = 0;
    /** Of which from others. */
    this.burstOthers = 0;
    /** Whether this task's messages are not to be read out one by one. */
    this.burstQuiet = false;
    /** Messages from others that landed quietly, to be summed up. */
    this.quietCount = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.quietTimer = undefined;
    /** @type {HTMLElement | null} the sentence that sums up quiet messages */
    this.summary = null;
    /**
     * Called with each message element as it is made (replies, reactions,
     * edits and deletions: conversation.js).
     * @type {((item: HTMLElement, msg: LogMessage) => void) | null}
     */
    this.decorate = null;

    this.jump = document.createElement('button');
    this.jump.type = 'button';
    this.jump.className = 'jump';
    this.jump.hidden = true;
    this.jump.addEventListener('click', () => this.toEnd());
    el.after(this.jump);

    el.addEventListener('scroll', () => this.onScroll(), { passive: true });
    // The reader moving the view themselves lets go of the divider.
    for (const type of ['wheel', 'touchstart', 'keydown', 'pointerdown']) {
      el.addEventListener(type, () => (this.anchor = null), { passive: true });
    }
    // A wheel at the very top or bottom moves nothing, so no scroll event
    // comes: the next page is asked for here too.
    el.addEventListener('wheel', () => {
      if (this.source && !this.loading) this.nearEdge();
    }, { passive: true });
    // Shown, resized (a phone's keyboard, the composer growing): keep the
    // view where the reader had it.
    new ResizeObserver(() => this.keepPlace()).observe(el);
  }

  /**
   * The newest message the reader had before, from an earlier visit: the
   * first newer one to arrive gets a "New since you left" divider above
   * it, with the view at it.
   * @param {OrderKey | null} key
   */
  setSeen(key) {
    this.seen = key;
  }

  /** The order key of the newest message shown, or null. */
  newest() {
    for (let el = this.el.lastElementChild; el; el = el.previousElementSibling) {
      const html = /** @type {HTMLElement} */ (el);
      if (html.classList.contains('msg') && html.dataset.clock !== undefined) {
        return { clock: Number(html.dataset.clock), author: html.dataset.author ?? '', seq: Number(html.dataset.seq) };
      }
    }
    return null;
  }

  /**
   * @param {string} text
   * @param {{warning?: boolean}} [options] warning: shown prominently
   */
  notice(text, { warning = false } = {}) {
    const item = document.createElement('p');
    item.className = warning ? 'notice warning' : 'notice';
    if (warning) item.setAttribute('role', 'alert');
    item.textContent = text;
    this.el.append(item);
    this.notices += 1;
    this.changed();
  }

  /** Empties the log. */
  clear() {
    this.el.replaceChildren(...(this.edge ? [this.edge] : []));
    this.newerHidden = false;
    this.byKey.clear();
    this.daysDirty.clear();
    this.summary = null;
    this.notices = 0;
    this.divider = null;
    this.anchor = null;
    this.unseen = 0;
    this.showJump();
    this.showEdge();
  }

  /**
   * From now on, the window moves over `source`: the messages kept on this
   * device.
   * @param {Source} source
   */
  setSource(source) {
    this.source = source;
    this.edge = document.createElement('p');
    this.edge.className = 'log-edge';
    // Said politely when it changes: loading, then the beginning.
    this.edge.setAttribute('role', 'status');
    this.el.prepend(this.edge);
    this.showEdge();
  }

  /**
   * Shows a message, once: at its place in the order if it has one, else
   * at the end.
   * @param {LogMessage} msg
   * @param {Status} [status] for our own messages: where delivery stands
   * @returns {{mentionsMe: boolean} | null} null if it was shown already
   *   (or is older than everything a full page holds)
   */
  message(msg, status) {
    const key = keyOf(msg);
    const id = key === null ? null : `${key.author}/${key.seq}`;
    if (id !== null && this.byKey.has(id)) return null;
    if (key !== null && !this.source && this.tooOld(key)) return null;
    const nodes = parse(msg.text, this.mentions);
    const mentionsMe = !msg.own && mentionsSelf(nodes);
    if (key !== null && this.source) {
      const outside = this.outside(key, msg.own);
      if (outside === 'older') {
        this.fillShort();
        return null;
      }
      if (outside === 'newer') {
        // Kept, drawn when the reader comes down (or takes the button).
        this.unseen += 1;
        this.showJump();
        return { mentionsMe };
      }
      if (outside === 'jump') {
        this.showNewest();
        return { mentionsMe };
      }
    }
    const item = this.render(msg, nodes, status);
    if (mentionsMe) item.classList.add('mentions-me');
    /** @type {Element | null} */
    let before = null;
    if (key !== null && id !== null) {
      this.byKey.set(id, item);
      before = this.placeOf(key);
      // The first message newer than what the reader had before.
      if (this.seen && !msg.own && !this.divider && compareKeys(key, this.seen) > 0) {
        this.divider = this.makeDivider(this.seen);
        this.el.insertBefore(this.divider, this.placeOf(this.seen));
        this.anchor = this.divider;
        before = this.placeOf(key);
      }
    }
    this.el.insertBefore(item, before);
    this.daysDirty.add(item);
    this.announce(msg.own, before === null);
    if (status && key !== null) this.setStatus(key.author, key.seq, status);
    if (msg.own) {
      // Sending takes the reader to the end.
      this.atBottom = true;
      this.anchor = null;
    } else if ((!this.atBottom || this.anchor) && before === null) {
      this.unseen += 1;
    }
    this.changed();
    return { mentionsMe };
  }

  /**
   * Who can be mentioned from now on (messages shown already keep their
   * look).
   * @param {import('./format.js').MentionMatcher} matcher
   */
  setMentions(matcher) {
    this.mentions = matcher;
  }

  /**
   * The element of a message shown in the log, if any.
   * @param {string} authorId
   * @param {number} seq
   * @returns {HTMLElement | undefined}
   */
  item(authorId, seq) {
    return this.byKey.get(`${authorId}/${seq}`);
  }

  /** The messages shown in the log. */
  items() {
    return this.byKey.values();
  }

  /**
   * Takes the reader to a message shown in the log (a search result, say),
   * and marks it for a moment. Returns whether it is in the log.
   * @param {string} authorId
   * @param {number} seq
   */
  reveal(authorId, seq) {
    let item = this.byKey.get(`${authorId}/${seq}`);
    if (!item && this.source) {
      // Kept but not drawn: the window moves to it.
      const list = this.source.messages();
      const at = list.findIndex((m) => m.author === authorId && m.seq === seq);
      if (at < 0) return false;
      const start = Math.max(0, Math.min(at - (this.window >> 1), list.length - this.window));
      this.redraw(list.slice(start, start + this.window), start + this.window < list.length);
      item = this.byKey.get(`${authorId}/${seq}`);
    }
    if (!item) return false;
    this.anchor = null;
    this.atBottom = false;
    item.scrollIntoView({ block: 'center' });
    item.tabIndex = -1;
    item.focus({ preventScroll: true });
    item.classList.remove('found');
    // Restarts the mark's animation.
    void item.offsetWidth;
    item.classList.add('found');
    return true;
  }

  /**
   * Decides, once the current task has added its messages, whether they
   * are read out: a few live ones at the end are (the log is a live
   * region); a batch from history, messages placed above, and our own are
   * not, and the others' are summed up in one sentence once they stop
   * coming.
   * @private
   * @param {boolean} own
   * @param {boolean} atEnd
   */
  announce(own, atEnd) {
    if (this.burst === 0) queueMicrotask(() => this.settleBurst());
    this.burst += 1;
    if (!own) this.burstOthers += 1;
    if (own || !atEnd) this.burstQuiet = true;
  }

  /** @private */
  settleBurst() {
    const quiet = this.burstQuiet || this.burst > MAX_ANNOUNCED;
    const others = this.burstOthers;
    this.burst = 0;
    this.burstOthers = 0;
    this.burstQuiet = false;
    if (!quiet) return;
    this.el.setAttribute('aria-busy', 'true');
    this.quietCount += others;
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => {
      this.el.removeAttribute('aria-busy');
      const count = this.quietCount;
      this.quietCount = 0;
      if (count === 0) return;
      this.summary?.remove();
      this.summary = document.createElement('p');
      this.summary.className = 'visually-hidden';
      this.summary.textContent = count === 1 ? '1 message added to the conversation.' : `${count} messages added to the conversation.`;
      this.el.append(this.summary);
    }, QUIET_MS);
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

  /**
   * A message shown as relayed and not yet verified is verified now.
   * @param {string} authorId
   * @param {number} seq
   */
  markVerified(authorId, seq) {
    this.byKey.get(`${authorId}/${seq}`)?.querySelector('.msg-relayed')?.remove();
  }

  /**
   * Takes a message off (a relayed one found forged).
   * @param {string} authorId
   * @param {number} seq
   */
  remove(authorId, seq) {
    const id = `${authorId}/${seq}`;
    const item = this.byKey.get(id);
    if (!item) return;
    this.byKey.delete(id);
    item.remove();
    this.changed();
  }

  /**
   * Records that `peerId` goes by `nick` (a member), so that names that
   * look alike are told apart.
   * @param {string} peerId
   * @param {string} nick
   */
  person(peerId, nick) {
    if (this.names.see(peerId, nick)) this.retag();
  }

  /**
   * Takes the reader to the end of the conversation.
   */
  toEnd() {
    this.anchor = null;
    this.atBottom = true;
    if (this.newerHidden) this.showNewest();
    this.trim();
    this.keepPlace();
    this.showJump();
  }

  /**
   * @private
   * @param {LogMessage} msg
   * @param {import('./format.js').Node[]} nodes its text, parsed
   * @param {Status} [status]
   */
  render(msg, nodes, status) {
    const item = document.createElement('article');
    item.className = msg.own ? 'msg own' : 'msg';
    item.dataset.id = msg.id;
    item.dataset.day = dayOf(msg.ts);
    const key = keyOf(msg);
    if (key !== null) {
      item.dataset.clock = String(key.clock);
      item.dataset.author = key.author;
      item.dataset.seq = String(key.seq);
    }
    const meta = document.createElement('header');
    meta.className = 'msg-meta';
    const author = document.createElement('span');
    author.className = 'msg-author';
    author.textContent = msg.own ? 'You' : msg.author;
    author.dir = 'auto';
    meta.append(author);
    if (!msg.own) {
      const who = msg.authorId ?? msg.author;
      author.dataset.colour = String(colourOf(who));
      author.dataset.nick = msg.author;
      if (this.names.see(who, msg.author)) this.retag();
      const tag = document.createElement('span');
      tag.className = 'msg-tag';
      tag.textContent = this.names.tag(who, msg.author);
      meta.append(tag);
    }
    const time = document.createElement('time');
    time.className = 'msg-time';
    const date = new Date(msg.ts);
    time.dateTime = date.toISOString();
    time.dataset.ts = String(msg.ts);
    const { short, full } = timeFormats();
    time.textContent = short.format(date);
    time.title = full.format(date);
    meta.append(time);
    if (status) {
      const state = document.createElement('span');
      state.className = 'msg-status';
      meta.append(state);
    }
    if (msg.relayedBy) {
      const relayed = document.createElement('span');
      relayed.className = 'msg-relayed';
      relayed.textContent = `relayed by ${msg.relayedBy}, not yet verified`;
      relayed.title = `${msg.author} has not been connected to you since: this message could not be checked against their own key yet.`;
      meta.append(relayed);
    }
    const text = document.createElement('div');
    text.className = 'msg-text';
    text.dir = 'auto';
    text.append(render(nodes));
    item.append(meta, text);
    this.decorate?.(item, msg);
    return item;
  }

  /**
   * Where an element with `key` goes: before the returned element, or at
   * the end for null. Usually the newest: looks from the end.
   * @private
   * @param {OrderKey} key
   * @returns {Element | null}
   */
  placeOf(key) {
    /** @type {Element | null} */
    let before = null;
    for (let el = this.el.lastElementChild; el; el = el.previousElementSibling) {
      const html = /** @type {HTMLElement} */ (el);
      if (html.dataset.clock !== undefined) {
        if (!after(html, key)) break;
        before = el;
      }
    }
    return before;
  }

  /**
   * Whether a message sorts before everything shown in a full page (the
   * history does not keep it either).
   * @private
   * @param {OrderKey} key
   */
  tooOld(key) {
    if (this.byKey.size < this.limit) return false;
    const first = this.firstMessage();
    return first !== null && compareKeys(key, elementKey(first)) < 0;
  }

  /** @private */
  firstMessage() {
    for (let el = this.el.firstElementChild; el; el = el.nextElementSibling) {
      if (el.classList.contains('msg') && /** @type {HTMLElement} */ (el).dataset.clock !== undefined) {
        return /** @type {HTMLElement} */ (el);
      }
    }
    return null;
  }

  /**
   * @private
   * @param {OrderKey} key
   */
  makeDivider(key) {
    const divider = document.createElement('p');
    divider.className = 'divider';
    divider.setAttribute('role', 'separator');
    divider.textContent = 'New since you left';
    // Sorts right after the message the reader had last.
    divider.dataset.clock = String(key.clock);
    divider.dataset.author = key.author;
    divider.dataset.seq = String(key.seq + 0.5);
    return divider;
  }

  /**
   * Something was added: once a frame, keep the page bounded and the view
   * where the reader wants it.
   * @private
   */
  changed() {
    if (this.frameQueued) return;
    this.frameQueued = true;
    requestAnimationFrame(() => {
      this.frameQueued = false;
      this.trim();
      this.trimNotices();
      this.settleDays();
      this.keepPlace();
      this.showJump();
      this.showEdge();
    });
  }

  /**
   * Puts the view back where the reader had it: at the end, at the
   * divider, or left alone.
   * @private
   */
  keepPlace() {
    if (this.anchor?.isConnected) {
      this.el.scrollTop = Math.max(0, this.anchor.offsetTop - this.el.offsetTop - 8);
      this.atBottom = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < NEAR_END_PX;
    } else if (this.atBottom) {
      this.el.scrollTop = this.el.scrollHeight;
      this.unseen = 0;
    } else {
      return;
    }
    this.placedAt = this.el.scrollTop;
  }

  /** @private */
  onScroll() {
    const el = this.el;
    if (this.source && !this.loading) this.nearEdge();
    // At the bottom of the window is not at the end while newer wait below.
    if (this.newerHidden) {
      this.atBottom = false;
      return;
    }
    // The scroll event of our own move can come after more was added
    // below: only a move up from where we put the view leaves the end.
    if (this.atBottom && !this.anchor && el.scrollTop >= this.placedAt - 1) return;
    this.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_END_PX;
    if (this.atBottom) {
      this.unseen = 0;
      this.showJump();
    }
  }

  /** @private */
  showJump() {
    const show = !this.atBottom && this.unseen > 0;
    this.jump.hidden = !show;
    if (show) {
      this.jump.textContent = `↓ ${this.unseen === 1 ? '1 new message' : `${this.unseen} new messages`}`;
    }
  }

  /**
   * Keeps only the newest `limit` messages in the page.
   * @private
   */
  trim() {
    if (this.source) {
      if (this.byKey.size <= this.window) return;
      // A reader at the end (or held at the divider) lets the oldest go;
      // one scrolled back keeps them, and the newest wait below.
      if (this.atBottom || this.anchor) this.dropTop(this.byKey.size - this.window);
      else this.dropBottom(this.byKey.size - this.window);
      this.showEdge();
      return;
    }
    while (this.byKey.size > this.limit) {
      const first = this.el.firstElementChild;
      if (!first) break;
      const html = /** @type {HTMLElement} */ (first);
      if (html.classList.contains('msg') && html.dataset.clock !== undefined) {
        this.byKey.delete(`${html.dataset.author}/${html.dataset.seq}`);
      } else if (html.classList.contains('notice')) {
        this.notices -= 1;
      }
      if (html === this.divider) this.divider = null;
      first.remove();
    }
    // The first message now shown starts with its day.
    const first = this.firstMessage();
    if (first) this.daysDirty.add(first);
  }

  /**
   * Puts day separators right around the messages added since last time:
   * one before the first message, and one before each message whose day
   * differs from the one shown above it. Relabels them all when the day
   * changed ("Today" becomes "Yesterday").
   * @private
   */
  settleDays() {
    const now = Date.now();
    if (dayOf(now) !== this.labelledOn) {
      this.labelledOn = dayOf(now);
      for (const el of this.el.querySelectorAll('.day')) {
        const html = /** @type {HTMLElement} */ (el);
        html.textContent = dayLabel(Number(html.dataset.ts), now);
      }
    }
    for (const item of this.daysDirty) {
      if (!item.isConnected) continue;
      this.fixDay(item, now);
      const next = nextMessage(item);
      if (next) this.fixDay(next, now);
    }
    this.daysDirty.clear();
  }

  /**
   * Makes the separators between `item` and the message above it right:
   * one, right after that message, if their days differ (or if `item` is
   * the first).
   * @private
   * @param {HTMLElement} item
   * @param {number} now
   */
  fixDay(item, now) {
    /** @type {HTMLElement[]} */
    const separators = [];
    let el = item.previousElementSibling;
    while (el && !el.classList.contains('msg')) {
      if (el.classList.contains('day')) separators.push(/** @type {HTMLElement} */ (el));
      el = el.previousElementSibling;
    }
    const above = /** @type {HTMLElement | null} */ (el);
    const wanted = above === null || above.dataset.day !== item.dataset.day;
    // Right after the message above: notices between came later.
    const place = above ? above.nextElementSibling : item.previousElementSibling;
    const kept = separators.length === 1 && wanted && place === separators[0] && separators[0].dataset.day === item.dataset.day;
    if (kept) return;
    for (const s of separators) s.remove();
    if (!wanted) return;
    const ts = Number(/** @type {HTMLTimeElement} */ (item.querySelector('.msg-time')).dataset.ts);
    const separator = document.createElement('h2');
    separator.className = 'day';
    separator.dataset.day = item.dataset.day;
    separator.dataset.ts = String(ts);
    separator.textContent = dayLabel(ts, now);
    if (above) above.after(separator);
    else item.before(separator);
  }

  /**
   * Where a message arriving now stands against the window: 'older' or
   * 'newer' when it falls outside (it is kept, and drawn when the window
   * gets there), 'jump' when it is ours and the window is not at the end,
   * null when it goes in.
   * @private
   * @param {OrderKey} key
   * @param {boolean} own
   * @returns {'older' | 'newer' | 'jump' | null}
   */
  outside(key, own) {
    const first = this.firstMessage();
    const last = this.lastMessage();
    if (!first || !last) return null;
    if (compareKeys(key, elementKey(last)) > 0) {
      if (own) return this.newerHidden ? 'jump' : null;
      if (this.newerHidden) return 'newer';
      // A reader scrolled back with a full window is left reading.
      if (!this.atBottom && !this.anchor && this.byKey.size >= this.window) {
        this.newerHidden = true;
        return 'newer';
      }
      return null;
    }
    if (compareKeys(key, elementKey(first)) < 0) {
      // Older than the window: it goes in only if nothing else kept is
      // between (else it comes with its page).
      const list = /** @type {NonNullable<typeof this.source>} */ (this.source).messages();
      const firstAt = lowerBound(list, elementKey(first));
      const others = list.slice(0, firstAt).filter((m) => compareKeys(m, key) !== 0).length;
      return others > 0 ? 'older' : null;
    }
    return null;
  }

  /**
   * Older kept messages came in (a late joiner's history, say) while the
   * log is too short to scroll: no scroll can bring their page, so they are
   * drawn at once, the reader left where they were.
   * @private
   */
  fillShort() {
    if (this.loading || this.el.scrollHeight > this.el.clientHeight) return;
    const atBottom = this.atBottom;
    for (let i = 0; i * this.pageSize < this.window && this.el.scrollHeight <= this.el.clientHeight && this.olderHidden(); i += 1) {
      this.loadOlder();
    }
    this.atBottom = atBottom;
    this.changed();
  }

  /**
   * Whether kept messages older than the window's first are not drawn.
   * @private
   */
  olderHidden() {
    if (!this.source) return false;
    const first = this.firstMessage();
    if (!first) return false;
    return lowerBound(this.source.messages(), elementKey(first)) > 0;
  }

  /**
   * The reader is near the top or the bottom of the window: the next page
   * comes in, drawn on the next frame (the loading line shows meanwhile).
   * @private
   */
  nearEdge() {
    const el = this.el;
    const older = el.scrollTop < NEAR_EDGE_PX && this.olderHidden();
    const newer = !older && this.newerHidden && el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_EDGE_PX;
    if (!older && !newer) return;
    this.loading = true;
    this.loadingOlder = older;
    this.showEdge();
    requestAnimationFrame(() => {
      this.loading = false;
      if (older) this.loadOlder();
      else this.loadNewer();
      this.showEdge();
      // A short page may leave the reader at the edge still.
      this.nearEdge();
    });
  }

  /**
   * Draws the page of kept messages above the window's first, keeping the
   * view on what the reader was reading; pages far below go.
   * @private
   */
  loadOlder() {
    const first = this.firstMessage();
    if (!this.source || !first) return;
    const list = this.source.messages();
    const end = lowerBound(list, elementKey(first));
    const page = list.slice(Math.max(0, end - this.pageSize), end);
    if (page.length === 0) return;
    const y = first.getBoundingClientRect().top;
    const at = this.edge ? this.edge.nextElementSibling : this.el.firstElementChild;
    for (const m of page) {
      const item = this.drawn(m);
      if (item) this.el.insertBefore(item, at);
    }
    this.daysDirty.add(first);
    this.settleDays();
    this.el.scrollTop += first.getBoundingClientRect().top - y;
    this.quietly();
    if (this.byKey.size > this.window) this.dropBottom(this.byKey.size - this.window);
    this.atBottom = false;
  }

  /**
   * Draws the page of kept messages below the window's last (the reader
   * comes back down); pages far above go, the view staying put.
   * @private
   */
  loadNewer() {
    const last = this.lastMessage();
    if (!this.source || !last) return;
    const list = this.source.messages();
    const start = upperBound(list, elementKey(last));
    const page = list.slice(start, start + this.pageSize);
    this.newerHidden = start + this.pageSize < list.length;
    for (const m of page) {
      const item = this.drawn(m);
      if (item) this.el.insertBefore(item, this.placeOf(elementKey(item)));
    }
    this.settleDays();
    this.quietly();
    if (this.byKey.size > this.window) this.dropTop(this.byKey.size - this.window, true);
    if (!this.newerHidden) this.unseen = 0;
    this.showJump();
  }

  /**
   * Draws the newest window of kept messages (the reader jumps to the end,
   * or sends).
   * @private
   */
  showNewest() {
    if (!this.source) return;
    const list = this.source.messages();
    this.redraw(list.slice(-this.window), false);
    this.anchor = null;
    this.atBottom = true;
    this.unseen = 0;
  }

  /**
   * Draws `messages` in place of the window's messages (notices stay).
   * @private
   * @param {readonly OrderKey[]} messages
   * @param {boolean} newerHidden whether kept messages follow them
   */
  redraw(messages, newerHidden) {
    for (const el of [...this.el.querySelectorAll(':scope > .msg, :scope > .day, :scope > .divider')]) el.remove();
    this.byKey.clear();
    this.divider = null;
    this.daysDirty.clear();
    for (const m of messages) {
      const item = this.drawn(m);
      if (item) this.el.insertBefore(item, this.placeOf(elementKey(item)));
    }
    this.newerHidden = newerHidden;
    this.settleDays();
    this.quietly();
    this.showEdge();
    this.showJump();
  }

  /**
   * A kept message made into its element, known by its key (the caller
   * puts it in the page); null if it is there already.
   * @private
   * @param {OrderKey} m
   */
  drawn(m) {
    const id = `${m.author}/${m.seq}`;
    if (!this.source || this.byKey.has(id)) return null;
    const { msg, status } = this.source.entry(m);
    const nodes = parse(msg.text, this.mentions);
    const item = this.render(msg, nodes, status);
    if (!msg.own && mentionsSelf(nodes)) item.classList.add('mentions-me');
    this.byKey.set(id, item);
    this.daysDirty.add(item);
    if (status) this.setStatus(m.author, m.seq, status);
    this.paged?.(msg);
    return item;
  }

  /**
   * Messages drawn from the source are not read out one by one: the log is
   * busy a moment.
   * @private
   */
  quietly() {
    this.el.setAttribute('aria-busy', 'true');
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => {
      this.el.removeAttribute('aria-busy');
      this.quietCount = 0;
    }, QUIET_MS);
  }

  /**
   * Takes the `n` oldest messages of the window out (with what stands
   * among them), the view staying on what the reader sees.
   * @private
   * @param {number} n
   * @param {boolean} [keepView] even at the end (a page came in below)
   */
  dropTop(n, keepView = false) {
    const keep = this.lastMessage();
    const y = keep?.getBoundingClientRect().top ?? 0;
    let dropped = 0;
    let el = this.edge ? this.edge.nextElementSibling : this.el.firstElementChild;
    while (el && dropped < n) {
      const next = el.nextElementSibling;
      if (this.takeOut(/** @type {HTMLElement} */ (el))) dropped += 1;
      el = next;
    }
    const first = this.firstMessage();
    if (first) {
      this.daysDirty.add(first);
      this.settleDays();
    }
    if (keep && (keepView || !this.atBottom)) this.el.scrollTop += keep.getBoundingClientRect().top - y;
  }

  /**
   * Takes the `n` newest messages of the window out (with what came after
   * them): they wait in the source below.
   * @private
   * @param {number} n
   */
  dropBottom(n) {
    let dropped = 0;
    let el = this.el.lastElementChild;
    while (el && el !== this.edge && dropped < n) {
      const previous = el.previousElementSibling;
      if (this.takeOut(/** @type {HTMLElement} */ (el))) dropped += 1;
      el = previous;
    }
    if (dropped > 0) this.newerHidden = true;
    // What was left at the end after the last message (its day) goes too.
    while (this.el.lastElementChild?.classList.contains('day')) this.el.lastElementChild.remove();
  }

  /**
   * Takes an element of the log out, forgetting what refers to it;
   * returns whether it was a message.
   * @private
   * @param {HTMLElement} el
   */
  takeOut(el) {
    const message = el.classList.contains('msg') && el.dataset.clock !== undefined;
    if (message) this.byKey.delete(`${el.dataset.author}/${el.dataset.seq}`);
    else if (el.classList.contains('notice')) this.notices -= 1;
    if (el === this.divider) this.divider = null;
    if (el === this.summary) this.summary = null;
    el.remove();
    return message;
  }

  /**
   * The top line: loading older messages, or the beginning of what this
   * device keeps (nothing while the log is empty).
   * @private
   */
  showEdge() {
    if (!this.edge) return;
    const text = this.byKey.size === 0 ? '' : (this.loading && this.loadingOlder) || this.olderHidden() ? 'Loading older messages…' : 'Beginning of this conversation on this device';
    if (this.edge.textContent !== text) this.edge.textContent = text;
    this.edge.hidden = text === '';
  }

  /** @private */
  lastMessage() {
    for (let el = this.el.lastElementChild; el; el = el.previousElementSibling) {
      if (el.classList.contains('msg') && /** @type {HTMLElement} */ (el).dataset.clock !== undefined) {
        return /** @type {HTMLElement} */ (el);
      }
    }
    return null;
  }

  /** @private */
  trimNotices() {
    if (this.notices <= MAX_NOTICES) return;
    for (const el of this.el.querySelectorAll('.notice')) {
      if (this.notices <= MAX_NOTICES) break;
      el.remove();
      this.notices -= 1;
    }
  }

  /**
   * Redraws the id tags after the names that look alike changed.
   * @private
   */
  retag() {
    for (const author of this.el.querySelectorAll('.msg-author[data-nick]')) {
      const html = /** @type {HTMLElement} */ (author);
      const msg = /** @type {HTMLElement} */ (html.closest('.msg'));
      const tag = html.nextElementSibling;
      if (tag?.classList.contains('msg-tag')) {
        tag.textContent = this.names.tag(msg.dataset.author ?? '', html.dataset.nick ?? '');
      }
    }
  }
}

/**
 * @param {OrderKey} a
 * @param {OrderKey} b
 */
function compareKeys(a, b) {
  if (a.clock !== b.clock) return a.clock - b.clock;
  if (a.author !== b.author) return a.author < b.author ? -1 : 1;
  return a.seq - b.seq;
}

/**
 * The index of the first of `list` (in order) at or after `key`.
 * @param {readonly OrderKey[]} list
 * @param {OrderKey} key
 */
function lowerBound(list, key) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareKeys(list[mid], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The index of the first of `list` (in order) after `key`.
 * @param {readonly OrderKey[]} list
 * @param {OrderKey} key
 */
function upperBound(list, key) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareKeys(list[mid], key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The message after `item` in the log, if any.
 * @param {HTMLElement} item
 * @returns {HTMLElement | null}
 */
function nextMessage(item) {
  let el = item.nextElementSibling;
  while (el && !el.classList.contains('msg')) el = el.nextElementSibling;
  return /** @type {HTMLElement | null} */ (el);
}

/**
 * @param {HTMLElement} el a message element
 * @returns {OrderKey}
 */
function elementKey(el) {
  return { clock: Number(el.dataset.clock), author: el.dataset.author ?? '', seq: Number(el.dataset.seq) };
}
