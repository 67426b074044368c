// The web client's protocol module against the shared vectors, which the
// Rust crate reads too (crates/protocol/tests/vectors.rs).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  chatEnvelope,
  joinMessage,
  leaveMessage,
  parsePeerMessage,
  parseServerMessage,
  peerIdFromKey,
  ProtocolError,
  randomId,
  renameMessage,
  signalMessage,
  validateKey,
  validateNick,
  validateRoomId,
} from '../../web/js/protocol.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/protocol.json', import.meta.url), 'utf8'));

/** @param {() => void} f */
function valid(f) {
  try {
    f();
    return true;
  } catch (e) {
    assert.ok(e instanceof ProtocolError, String(e));
    return false;
  }
}

/**
 * @param {string} name
 * @param {(text: string) => unknown} parse
 */
function check(name, parse) {
  assert.ok(vectors[name].length > 0);
  for (const c of vectors[name]) {
    if ('ok' in c) {
      assert.deepEqual(parse(c.text), c.ok, `${name}: ${c.text}`);
    } else {
      assert.throws(() => parse(c.text), (e) => e instanceof ProtocolError && e.code === c.error, `${name}: ${c.text}`);
    }
  }
}

test('room ids', () => {
  for (const c of vectors.room_ids) assert.equal(valid(() => validateRoomId(c.input)), c.valid, JSON.stringify(c.input));
});

test('nicknames', () => {
  for (const c of vectors.nicks) assert.equal(valid(() => validateNick(c.input)), c.valid, JSON.stringify(c.input));
});

test('member keys', () => {
  for (const c of vectors.keys) assert.equal(valid(() => validateKey(c.input)), c.valid, JSON.stringify(c.input));
});

test('peer ids derived from member keys', async () => {
  assert.ok(vectors.peer_ids.length > 0);
  for (const c of vectors.peer_ids) assert.equal(await peerIdFromKey(c.room, c.key), c.id, JSON.stringify(c));
});

test('server messages', () => check('server_messages', parseServerMessage));

test('peer messages', () =>
  check('peer_messages', (text) => {
    const msg = parsePeerMessage(text);
    return msg.kind === 'private' ? { kind: 'private', body: JSON.parse(msg.body) } : msg;
  }));

test('client messages built by the page match the vectors', () => {
  for (const c of vectors.client_messages.filter((c) => 'ok' in c)) {
    const want = c.ok;
    const built = {
      join: () => joinMessage(want.room, want.nick, want.key),
      leave: () => leaveMessage(),
      signal: () => signalMessage(want.to, want.payload),
      rename: () => renameMessage(want.nick),
    }[/** @type {'join' | 'leave' | 'signal' | 'rename'} */ (want.type)];
    assert.ok(built, `no builder for ${want.type}`);
    assert.deepEqual(built(), want);
  }
});

test('chat envelopes round-trip', () => {
  const chat = { id: randomId(), seq: 1, clock: 2, ts: 1763769600000, text: 'hi "there" <b>' };
  assert.deepEqual(parsePeerMessage(chatEnvelope(chat)), { kind: 'chat', ...chat });
});

test('random ids carry 128 bits in 22 url-safe characters', () => {
  const ids = new Set(Array.from({ length: 1000 }, randomId));
  assert.equal(ids.size, 1000);
  for (const id of ids) {
    validateRoomId(id);
    validateKey(id);
  }
});

test('nickname keys', async () => {
  const { nickKey } = await import('../../web/js/nickkey.js');
  assert.ok(vectors.nick_keys.length > 0);
  for (const c of vectors.nick_keys) {
    assert.ok(valid(() => validateNick(c.a)) && valid(() => validateNick(c.b)), JSON.stringify(c));
    assert.equal(nickKey(c.a) === nickKey(c.b), c.same, JSON.stringify(c));
  }
});
