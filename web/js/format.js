// @ts-check
/**
 * Message text as people read it: links, a small formatting subset and
 * mentions. {@link parse} turns a message's text into a tree of nodes (no
 * DOM, so it is tested in Node); {@link render} builds DOM nodes from that
 * tree, with `textContent` and attributes only: no HTML string is ever
 * parsed, whatever a message holds.
 *
 * The rules (README, "Formatting"):
 * - **Code block**: a line that starts with three backticks opens one (the
 *   rest of that line, a language name say, is not shown); the next line
 *   made of three backticks alone (spaces around allowed) closes it.
 *   Everything between is shown as written, in a monospace block. A block
 *   that is never closed is not one: its lines are ordinary text.
 * - **Code**: a run of backticks opens code on one line, closed by the next
 *   run of as many backticks; what is between (not empty) is shown as
 *   written. `` ``a`b`` `` shows a`b.
 * - **Bold** `*text*` and **italic** `_text_`: a single `*` or `_` (a run of
 *   two or more is literal) opens where it is not preceded by a letter or
 *   digit and is followed by something other than white space, and closes
 *   where it is preceded by something other than white space and not
 *   followed by a letter or digit; both ends on one line, with text between.
 *   So `snake_case_name` and `2*3*4` stay as written. Bold and italic nest
 *   in each other and may hold code, links and mentions; a pair that
 *   crosses another (`*a _b* c_`) is matched first-closed-first and the
 *   crossing delimiter is literal.
 * - **Links**: `http://` or `https://` (any case) where not preceded by a
 *   letter or digit, up to white space or one of `` < > " ` \ ``; then
 *   trailing `. , : ; ! ? ' * _ ~` are left out, and a trailing `)` too
 *   while the link has more `)` than `(`. It must parse as an absolute
 *   http(s) URL with a host. Nothing inside a link is formatting. Links
 *   inside code are not links.
 * - **Mentions**: `@` not preceded by a letter or digit, followed by the
 *   nickname of a member present (compared as the server compares
 *   nicknames, `nickKey`) and then by anything but a letter or digit. The
 *   longest matching nickname wins.
 * - **Escapes**: a backslash before one of `` \ * _ ` @ `` shows that
 *   character as written (and the backslash not); before anything else, a
 *   backslash is itself. There are no escapes inside code.
 * @module
 */

import { nickKey } from './nickkey.js';

/**
 * @typedef {{type: 'text', text: string}
 *   | {type: 'bold' | 'italic', children: Node[]}
 *   | {type: 'code', text: string}
 *   | {type: 'block', text: string}
 *   | {type: 'link', href: string, text: string}
 *   | {type: 'mention', text: string, nick: string, self: boolean}} Node
 * @typedef {(text: string, at: number) => {length: number, nick: string, self: boolean} | null} MentionMatcher
 *   the mention starting right after the `@` at `at`, if any
 */

const ESCAPABLE = new Set(['\\', '*', '_', '`', '@']);
const WORD = /[\p{L}\p{N}]/u;
const SPACE = /\s/u;
const URL_START = /^https?:\/\//i;
const URL_STOP = /[\s<>"`\\]/u;
const URL_TRAILING = new Set(['.', ',', ':', ';', '!', '?', "'", '*', '_', '~']);
const FENCE_OPEN = /^```[^`]*$/;
const FENCE_CLOSE = /^[ \t]*```[ \t]*$/;

/** @param {string | undefined} ch */
const isWord = (ch) => ch !== undefined && WORD.test(ch);
/** @param {string | undefined} ch */
const isSpace = (ch) => ch !== undefined && SPACE.test(ch);

/**
 * Finds mentions of these nicknames; `me` (ours, if in the list) gives
 * mentions marked `self`.
 * @param {string[]} nicks
 * @param {string | null} [me]
 * @returns {MentionMatcher}
 */
export function mentionMatcher(nicks, me = null) {
  const mine = me === null ? null : nickKey(me);
  const known = [...new Set(nicks)]
    .map((nick) => ({ nick, key: nickKey(nick), length: nick.length }))
    .sort((a, b) => b.length - a.length);
  return (text, at) => {
    for (const { nick, key, length } of known) {
      const candidate = text.slice(at, at + length);
      if (candidate.length === length && !isWord(text[at + length]) && nickKey(candidate) === key) {
        return { length, nick, self: key === mine };
      }
    }
    return null;
  };
}

/** A matcher for no mentions. */
const NO_MENTIONS = /** @type {MentionMatcher} */ (() => null);

/**
 * The tree of a message's text.
 * @param {string} text
 * @param {MentionMatcher} [mentions]
 * @returns {Node[]}
 */
export function parse(text, mentions = NO_MENTIONS) {
  /** @type {Node[]} */
  const out = [];
  const lines = text.split('\n');
  let start = 0;
  for (let i = 0; i < lines.length; i += 1) {
    if (!FENCE_OPEN.test(lines[i])) continue;
    let end = i + 1;
    while (end < lines.length && !FENCE_CLOSE.test(lines[end])) end += 1;
    if (end === lines.length) break;
    if (i > start) push(out, inline(lines.slice(start, i).join('\n'), mentions));
    out.push({ type: 'block', text: lines.slice(i + 1, end).join('\n') });
    start = end + 1;
    i = end;
  }
  if (start < lines.length) push(out, inline(lines.slice(start).join('\n'), mentions));
  return out;
}

/**
 * Appends nodes, merging adjacent text.
 * @param {Node[]} out
 * @param {Node[]} nodes
 */
function push(out, nodes) {
  for (const node of nodes) {
    const last = out.at(-1);
    if (node.type === 'text' && last?.type === 'text') last.text += node.text;
    else if (node.type !== 'text' || node.text !== '') out.push(node);
  }
}

/**
 * @typedef {{kind: 'node', node: Node, line: number}
 *   | {kind: 'delim', ch: string, open: boolean, close: boolean, line: number}} Atom
 */

/**
 * Inline formatting of text without code blocks.
 * @param {string} text
 * @param {MentionMatcher} mentions
 * @returns {Node[]}
 */
function inline(text, mentions) {
  /** @type {Atom[]} */
  const atoms = [];
  let line = 0;
  /** @param {string} s */
  const literal = (s) => {
    const last = atoms.at(-1);
    if (last?.kind === 'node' && last.node.type === 'text' && last.line === line) last.node.text += s;
    else atoms.push({ kind: 'node', node: { type: 'text', text: s }, line });
  };
  let i = 0;
  /** Where the last escape ended: the character before it was written escaped. */
  let escaped = -1;
  while (i < text.length) {
    const ch = text[i];
    const prev = i > 0 ? text[i - 1] : undefined;
    if (ch === '\n') {
      literal(ch);
      line += 1;
      i += 1;
    } else if (ch === '\\' && ESCAPABLE.has(text[i + 1])) {
      literal(text[i + 1]);
      i += 2;
      escaped = i;
    } else if (ch === '`') {
      let run = 1;
      while (text[i + run] === '`') run += 1;
      const close = codeEnd(text, i + run, run);
      if (close === -1) {
        literal(text.slice(i, i + run));
        i += run;
      } else {
        atoms.push({ kind: 'node', node: { type: 'code', text: text.slice(i + run, close) }, line });
        i = close + run;
      }
    } else if ((ch === 'h' || ch === 'H') && !isWord(prev) && URL_START.test(text.slice(i, i + 8))) {
      const link = linkAt(text, i);
      if (link) {
        atoms.push({ kind: 'node', node: link, line });
        i += link.text.length;
      } else {
        literal(ch);
        i += 1;
      }
    } else if (ch === '@' && !isWord(prev)) {
      const found = mentions(text, i + 1);
      if (found) {
        const shown = text.slice(i, i + 1 + found.length);
        atoms.push({ kind: 'node', node: { type: 'mention', text: shown, nick: found.nick, self: found.self }, line });
        i += 1 + found.length;
      } else {
        literal(ch);
        i += 1;
      }
    } else if ((ch === '*' || ch === '_') && (prev !== ch || escaped === i) && text[i + 1] !== ch) {
      const next = text[i + 1];
      const open = next !== undefined && !isSpace(next) && !isWord(prev);
      const close = prev !== undefined && !isSpace(prev) && !isWord(next);
      if (open || close) atoms.push({ kind: 'delim', ch, open, close, line });
      else literal(ch);
      i += 1;
    } else {
      // A run of ordinary characters at once.
      let end = i + 1;
      while (end < text.length && !'\n\\`hH@*_'.includes(text[end])) end += 1;
      literal(text.slice(i, end));
      i = end;
    }
  }
  return build(atoms, pairs(atoms), 0, atoms.length);
}

/**
 * Where the code opened by `run` backticks before `from` closes: the start
 * of the next run of exactly `run` backticks on the same line, with
 * something between; -1 if none.
 * @param {string} text
 * @param {number} from
 * @param {number} run
 */
function codeEnd(text, from, run) {
  let i = from;
  while (i < text.length && text[i] !== '\n') {
    if (text[i] !== '`') {
      i += 1;
      continue;
    }
    let n = 1;
    while (text[i + n] === '`') n += 1;
    if (n === run && i > from) return i;
    i += n;
  }
  return -1;
}

/**
 * The link starting at `at`, if the text there is one.
 * @param {string} text
 * @param {number} at
 * @returns {{type: 'link', href: string, text: string} | null}
 */
export function linkAt(text, at) {
  let end = at;
  while (end < text.length && !URL_STOP.test(text[end])) end += 1;
  let candidate = text.slice(at, end);
  for (;;) {
    const last = candidate.at(-1);
    if (last !== undefined && URL_TRAILING.has(last)) {
      candidate = candidate.slice(0, -1);
    } else if (last === ')' && count(candidate, ')') > count(candidate, '(')) {
      candidate = candidate.slice(0, -1);
    } else {
      break;
    }
  }
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return null;
  return { type: 'link', href: url.href, text: candidate };
}

/**
 * @param {string} text
 * @param {string} ch
 */
function count(text, ch) {
  let n = 0;
  for (const c of text) if (c === ch) n += 1;
  return n;
}

/**
 * Matches emphasis delimiters: returns, for each opener index, the index
 * of its closer.
 * @param {Atom[]} atoms
 * @returns {Map<number, number>}
 */
function pairs(atoms) {
  /** @type {Map<number, number>} */
  const matched = new Map();
  /** @type {number[]} openers waiting, innermost last */
  const stack = [];
  atoms.forEach((atom, i) => {
    if (atom.kind !== 'delim') return;
    if (atom.close) {
      let k = stack.length - 1;
      while (k >= 0) {
        const opener = /** @type {Extract<Atom, {kind: 'delim'}>} */ (atoms[stack[k]]);
        if (opener.ch === atom.ch && opener.line === atom.line && stack[k] < i - 1) break;
        k -= 1;
      }
      if (k >= 0) {
        matched.set(stack[k], i);
        // Openers inside the pair that never closed are literal.
        stack.length = k;
        return;
      }
    }
    if (atom.open) stack.push(i);
  });
  return matched;
}

/**
 * The nodes of atoms `from` to `to`.
 * @param {Atom[]} atoms
 * @param {Map<number, number>} matched
 * @param {number} from
 * @param {number} to
 * @returns {Node[]}
 */
function build(atoms, matched, from, to) {
  /** @type {Node[]} */
  const out = [];
  for (let i = from; i < to; i += 1) {
    const atom = atoms[i];
    if (atom.kind === 'node') {
      push(out, [atom.node.type === 'text' ? { ...atom.node } : atom.node]);
      continue;
    }
    const close = matched.get(i);
    if (close === undefined || close >= to) {
      push(out, [{ type: 'text', text: atom.ch }]);
      continue;
    }
    out.push({ type: atom.ch === '*' ? 'bold' : 'italic', children: build(atoms, matched, i + 1, close) });
    i = close;
  }
  return out;
}

/**
 * Whether the tree mentions us.
 * @param {Node[]} nodes
 * @returns {boolean}
 */
export function mentionsSelf(nodes) {
  return nodes.some(
    (n) => (n.type === 'mention' && n.self) || ((n.type === 'bold' || n.type === 'italic') && mentionsSelf(n.children)),
  );
}

/**
 * The DOM of a tree, built from elements and text nodes.
 * @param {Node[]} nodes
 * @returns {DocumentFragment}
 */
export function render(nodes) {
  const fragment = document.createDocumentFragment();
  for (const node of nodes) fragment.append(renderNode(node));
  return fragment;
}

/**
 * @param {Node} node
 * @returns {globalThis.Node}
 */
function renderNode(node) {
  switch (node.type) {
    case 'text':
      return document.createTextNode(node.text);
    case 'bold':
    case 'italic': {
      const el = document.createElement(node.type === 'bold' ? 'strong' : 'em');
      el.append(render(node.children));
      return el;
    }
    case 'code': {
      const el = document.createElement('code');
      el.textContent = node.text;
      return el;
    }
    case 'block': {
      const pre = document.createElement('pre');
      pre.className = 'msg-block';
      // Scrolled sideways by keyboard too.
      pre.tabIndex = 0;
      const code = document.createElement('code');
      code.textContent = node.text;
      pre.append(code);
      return pre;
    }
    case 'link': {
      const a = document.createElement('a');
      a.href = node.href;
      a.textContent = node.text;
      // Leaving the page would leave the room.
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      return a;
    }
    case 'mention': {
      const el = document.createElement('span');
      el.className = node.self ? 'mention self' : 'mention';
      el.textContent = node.text;
      return el;
    }
  }
}
