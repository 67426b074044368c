// @ts-check
/**
 * Private conversations: one log per other member, apart from the room's.
 *
 * A private conversation is a {@link History} of its own
 * ({@link History.between}): its own numbering, clock, acknowledgements,
 * delivery states and sync, holding only the two parties' entries. Its
 * envelopes travel wrapped in a `private` envelope, only over the channel
 * to the other party, so they never reach a third member and are never part
 * of the room's history. No I/O and no clock.
 *
 * Entries are signed as in the room, bound to their recipient as well
 * (kind `private`): a private message cannot be shown as one in the room or
 * in a conversation with someone else. As in the room's log, signing and
 * checking are the caller's: {@link Conversations#draft} and
 * {@link Conversations#commit}, `verify` effects answered with
 * {@link Conversations#verified}.
 *
 * This mirrors the Rust module `peerchat_history::private`; both replay the
 * scenarios in `tests/vectors/private.json`. See docs/protocol.md,
 * "Private messages".
 * @module
 */

import { checkText, History } from './history.js';
import { parsePeerMessage, privateEnvelope, ProtocolError } from './protocol.js';

/**
 * @typedef {import('./history.js').Effect} Effect
 * @typedef {import('./history.js').Message} Message
 * @typedef {import('./history.js').Saved} Saved
 * @typedef {import('./history.js').Config} Config
 * @typedef {import('./history.js').Draft} Draft
 */

/** Most conversations kept at once; past it, the quietest is forgotten. */
export const MAX_CONVERSATIONS = 64;

const ID_ALPHABET = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The inner envelope of a `private` one, as JSON text; null for any other
 * envelope (including one that is not JSON).
 * @param {string} text
 * @returns {string | null}
 */
export function unwrapPrivate(text) {
  try {
    const msg = parsePeerMessage(text);
    return msg.kind === 'private' ? msg.body : null;
  } catch {
    return null;
  }
}

/**
 * Effects of a conversation's log, wrapped, counting the entries from
 * `peer` taken as unread.
 * @param {{unread: number}} c
 * @param {string} peer
 * @param {Effect[]} effects
 */
function counted(c, peer, effects) {
  const out = effects.map(wrap);
  for (const e of out) if ('added' in e && e.added.author === peer) c.unread += 1;
  return out;
}

/**
 * An effect of a conversation's log, its envelope wrapped.
 * @param {Effect} effect
 * @returns {Effect}
 */
function wrap(effect) {
  return 'send' in effect ? { send: { to: effect.send.to, text: privateEnvelope(effect.send.text) } } : effect;
}

export class Conversations {
  /**
   * @param {string} me our peer id
   * @param {Partial<Config>} [config] the limits of each log
   * @param {number} [limit] most conversations kept
   */
  constructor(me, config = {}, limit = MAX_CONVERSATIONS) {
    this.me = me;
    this.config = config;
    this.limit = Math.max(1, limit);
    /** @type {Map<string, {log: History, unread: number, active: number}>} */
    this.logs = new Map();
    /** @type {{context: string, key: {alg: string, key: string}} | null} what signatures are bound to, our key */
    this.identity = null;
    /** @type {Map<string, {alg: string, key: string}>} the other members' keys, as their hellos confirmed them */
    this.keys = new Map();
  }

  /**
   * Signs in `context` with our identity key `key` (as
   * {@link History#setIdentity}).
   * @param {string} context
   * @param {{alg: string, key: string}} key
   */
  setIdentity(context, key) {
    this.identity = { context, key: { alg: key.alg, key: key.key } };
    // Conversations brought back before our key was loaded sign with it too.
    for (const { log } of this.logs.values()) log.setIdentity(context, this.identity.key);
    return this;
  }

  /**
   * `peer`'s own hello verified with `key`: its entries are checked against
   * it (the effects are those of {@link History#keyConfirmed}).
   * @param {string} peer
   * @param {{alg: string, key: string}} key
   * @returns {Effect[]}
   */
  keyConfirmed(peer, key) {
    this.keys.set(peer, { alg: key.alg, key: key.key });
    return this.logs.get(peer)?.log.keyConfirmed(peer, key) ?? [];
  }

  /** The other parties of the conversations kept, sorted. */
  peers() {
    return [...this.logs.keys()].sort();
  }

  /**
   * The log of the conversation with `peer`, if there is one.
   * @param {string} peer
   */
  get(peer) {
    return this.logs.get(peer)?.log;
  }

  /**
   * Entries from `peer` taken since {@link Conversations.markRead}.
   * @param {string} peer
   */
  unread(peer) {
    return this.logs.get(peer)?.unread ?? 0;
  }

  /** @param {string} peer */
  markRead(peer) {
    const c = this.logs.get(peer);
    if (c) c.unread = 0;
  }

  /**
   * Sets how many entries from `peer` are unread (worked out from the
   * read mark kept on the device, as the page opens).
   * @param {string} peer
   * @param {number} n
   */
  setUnread(peer, n) {
    const c = this.logs.get(peer);
    if (c) c.unread = Math.max(0, n);
  }

  /** @param {string} peer */
  remove(peer) {
    this.logs.delete(peer);
  }

  /**
   * @private
   * @param {string} peer
   * @param {number} now
   */
  open(peer, now) {
    if (!this.logs.has(peer) && this.logs.size >= this.limit) {
      /** @type {[string, number] | null} */
      let quietest = null;
      for (const [p, c] of this.logs) {
        if (quietest === null || c.active < quietest[1] || (c.active === quietest[1] && p < quietest[0])) {
          quietest = [p, c.active];
        }
      }
      if (quietest) this.logs.delete(quietest[0]);
    }
    let c = this.logs.get(peer);
    if (!c) {
      const log = History.between(this.me, peer, this.config);
      if (this.identity) log.setIdentity(this.identity.context, this.identity.key);
      const key = this.keys.get(peer);
      if (key) log.keyConfirmed(peer, key);
      c = { log, unread: 0, active: now };
      this.logs.set(peer, c);
    }
    c.active = Math.max(c.active, now);
    return c;
  }

  /**
   * @private
   * @param {string} peer
   */
  checkPeer(peer) {
    if (!ID_ALPHABET.test(peer)) {
      throw new ProtocolError('invalid', 'field `author` must be 1 to 64 characters of A-Z, a-z, 0-9, - and _');
    }
    if (peer === this.me) throw new ProtocolError('invalid', 'field `to` must be another member');
  }

  /**
   * Numbers a message to `peer` and says what to sign, as
   * {@link History#draft}; hand the signature to {@link Conversations#commit}.
   * @param {string} peer
   * @param {{id: string, nick: string, text: string, ts: number}} message
   * @returns {Draft}
   */
  draft(peer, { id, nick, text, ts }) {
    this.checkPeer(peer);
    checkText(text);
    return this.open(peer, ts).log.draft({ id, nick, text, ts });
  }

  /**
   * Numbers a file offer to `peer` and says what to sign.
   * @param {string} peer
   * @param {{id: string, nick: string, file: import('./protocol.js').FileMeta, ts: number}} offer
   * @returns {Draft}
   */
  draftFile(peer, { id, nick, file, ts }) {
    this.checkPeer(peer);
    return this.open(peer, ts).log.draftFile({ id, nick, file, ts });
  }

  /**
   * Records a message (or offer) to `peer`, drafted and signed (`sig`,
   * base64url): the message kept and the `private` envelope to send over
   * the channel to `peer`.
   * @param {string} peer
   * @param {Draft} draft
   * @param {string} sig
   * @returns {{message: Message, envelope: string}}
   */
  commit(peer, draft, sig) {
    this.checkPeer(peer);
    const sent = this.open(peer, draft.message.ts).log.commit(draft, sig, [peer]);
    return { message: sent.message, envelope: privateEnvelope(sent.envelope) };
  }

  /**
   * Handles `body`, the inner envelope of a `private` envelope (see
   * {@link unwrapPrivate}) from `from` at `now`: the effects concern the
   * conversation with `from`; envelopes to send are wrapped already.
   * @param {string} from
   * @param {string} nick
   * @param {string} body
   * @param {number} now
   * @returns {Effect[]}
   */
  handle(from, nick, body, now) {
    if (!ID_ALPHABET.test(from)) throw new ProtocolError('bad_message', 'field `author` must be a peer id');
    if (from === this.me) return [];
    if (unwrapPrivate(body) !== null) {
      throw new ProtocolError('bad_message', 'field `body` must not be another private envelope');
    }
    const c = this.open(from, now);
    return counted(c, from, c.log.handle(from, nick, body, now));
  }

  /**
   * The signatures of check `id` of the conversation with `peer` (a
   * `verify` effect it returned) were checked, as {@link History#verified}.
   * @param {string} peer
   * @param {number} id
   * @param {boolean[]} results
   * @returns {Effect[]}
   */
  verified(peer, id, results) {
    const c = this.logs.get(peer);
    return c ? counted(c, peer, c.log.verified(id, results)) : [];
  }

  /**
   * The channel to `peer` opened: the conversation's sync and our
   * unacknowledged entries, wrapped; nothing without a conversation.
   * @param {string} peer
   * @returns {Effect[]}
   */
  linkOpened(peer) {
    const c = this.logs.get(peer);
    return c ? c.log.linkOpened(peer).map(wrap) : [];
  }

  /** @param {string} peer */
  linkClosed(peer) {
    this.logs.get(peer)?.log.linkClosed(peer);
  }

  /**
   * We typed in the conversation with `peer`: the wrapped typing envelope,
   * or null.
   * @param {string} peer
   * @param {number} now
   * @returns {string | null}
   */
  typed(peer, now) {
    const t = this.logs.get(peer)?.log.typed(now) ?? null;
    return t === null ? null : privateEnvelope(t);
  }

  /**
   * @param {string} peer
   * @returns {Saved | null}
   */
  save(peer) {
    return this.logs.get(peer)?.log.save() ?? null;
  }

  /**
   * Puts back a saved conversation with `peer`; returns the entries added,
   * in order.
   * @param {string} peer
   * @param {Saved} saved
   * @param {number} now
   */
  restore(peer, saved, now) {
    try {
      this.checkPeer(peer);
    } catch {
      return [];
    }
    return this.open(peer, now).log.restore(saved);
  }
}
