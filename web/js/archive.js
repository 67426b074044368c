// @ts-check
/**
 * A room's history as kept on this device, exported and searched: the
 * same formats and the same matching rule as the terminal client's
 * `/export` and `/search` (crates/cli/src/archive.rs); both replay
 * `tests/vectors/archive.json`. No DOM, no storage: the page hands in the
 * messages.
 *
 * - Plain text: a first line naming the room and the number of messages,
 *   then one message per line as `YYYY-MM-DD HH:MM:SS ±HH:MM nick: text`
 *   in local time, each further line of a message indented by two spaces.
 * - JSON: `{"room", "exported_at", "messages": [{"id", "author", "nick",
 *   "seq", "clock", "ts", "time", "text"}]}`, `author` the peer id, `ts`
 *   milliseconds since the epoch and `time` the same in UTC (RFC 3339).
 * - Search: the words of the query (split at white space) must all occur
 *   in the message's text or its author's nickname, ignoring case and
 *   accents (both sides decomposed, NFKD, with marks dropped, then lower
 *   case). Newest first.
 * @module
 */

/**
 * @typedef {{id: string, author: string, nick: string, seq: number, clock: number, ts: number, text: string}} Kept
 */

/**
 * @param {number} n
 * @param {number} [width]
 */
const pad = (n, width = 2) => String(n).padStart(width, '0');

/**
 * A timestamp as `YYYY-MM-DD HH:MM:SS ±HH:MM`, at `offset` minutes east of
 * UTC.
 * @param {number} ts
 * @param {number} offset
 */
export function stamp(ts, offset) {
  const d = new Date(ts + offset * 60_000);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/**
 * The minutes east of UTC of this device's time zone at `ts`.
 * @param {number} ts
 */
export function localOffset(ts) {
  return -new Date(ts).getTimezoneOffset();
}

/**
 * The plain-text export.
 * @param {string} room
 * @param {Kept[]} messages in the room's order
 * @param {(ts: number) => number} [offsetAt] minutes east of UTC at a time
 */
export function exportText(room, messages, offsetAt = localOffset) {
  const count = messages.length === 1 ? '1 message' : `${messages.length} messages`;
  const lines = [`peerchat room ${room}: ${count}`];
  for (const m of messages) {
    const [first, ...rest] = m.text.split('\n');
    lines.push(`${stamp(m.ts, offsetAt(m.ts))} ${m.nick}: ${first}`, ...rest.map((l) => `  ${l}`));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The JSON export.
 * @param {string} room
 * @param {Kept[]} messages in the room's order
 * @param {number} now when it is exported (ms since the epoch)
 */
export function exportJson(room, messages, now) {
  const out = {
    room,
    exported_at: new Date(now).toISOString(),
    messages: messages.map((m) => ({
      id: m.id,
      author: m.author,
      nick: m.nick,
      seq: m.seq,
      clock: m.clock,
      ts: m.ts,
      time: new Date(m.ts).toISOString(),
      text: m.text,
    })),
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/**
 * Text as search compares it: decomposed, marks dropped, lower case.
 * @param {string} text
 */
export function fold(text) {
  return text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * The messages that hold every word of `query`, newest first, at most
 * `limit`. An empty query finds nothing.
 * @template {Kept} T
 * @param {T[]} messages in the room's order
 * @param {string} query
 * @param {number} [limit]
 * @returns {T[]}
 */
export function search(messages, query, limit = 100) {
  const words = fold(query).split(/\p{White_Space}+/u).filter((w) => w !== '');
  if (words.length === 0) return [];
  /** @type {T[]} */
  const found = [];
  for (let i = messages.length - 1; i >= 0 && found.length < limit; i -= 1) {
    const m = messages[i];
    const haystack = `${fold(m.nick)}\n${fold(m.text)}`;
    if (words.every((w) => haystack.includes(w))) found.push(m);
  }
  return found;
}
