// Replays the shared private-conversation scenarios
// (tests/vectors/private.json) against the web client's private.js beside
// history.js; the Rust crate peerchat-history replays the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { History } from '../../web/js/history.js';
import { Conversations, unwrapPrivate } from '../../web/js/private.js';

const doc = JSON.parse(readFileSync(new URL('../vectors/private.json', import.meta.url), 'utf8'));

/** @param {import('../../web/js/history.js').Effect} e */
function effect(e) {
  if ('added' in e) return { added: [e.added.author, e.added.seq] };
  return e;
}

/** @param {import('../../web/js/history.js').Message[]} messages */
const order = (messages) => messages.map((m) => [m.author, m.seq]);

/**
 * @param {() => {message: object, envelope: string}} send
 * @param {any} want
 * @param {string} at
 */
function sent(send, want, at) {
  try {
    const { message, envelope } = send();
    assert.deepEqual(message, want.message, at);
    assert.equal(envelope, want.envelope, at);
  } catch (e) {
    if (!want.error) throw e;
    assert.equal(/** @type {any} */ (e).code, want.error, at);
  }
}

for (const scenario of doc.scenarios) {
  test(scenario.name, () => {
    const room = new History(scenario.me);
    const conversations = new Conversations(scenario.me, {}, scenario.config?.limit);
    scenario.steps.forEach((step, i) => {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const { want, peer } = step;
      switch (step.do) {
        case 'send':
          sent(() => conversations.send(peer, step), want, at);
          break;
        case 'send_file':
          sent(() => conversations.sendFile(peer, step), want, at);
          break;
        case 'room_send':
          assert.equal(room.send(step).envelope, want, at);
          break;
        case 'receive': {
          const body = unwrapPrivate(step.text);
          let got;
          if (body !== null) {
            try {
              got = { private: conversations.handle(step.from, step.nick, body, step.now).map(effect) };
            } catch (e) {
              got = { error: /** @type {any} */ (e).code };
            }
          } else {
            try {
              got = { room: room.handle(step.from, step.nick, step.text, step.now).map(effect) };
            } catch (e) {
              got = { room: { error: /** @type {any} */ (e).code } };
            }
          }
          assert.deepEqual(got, want, at);
          break;
        }
        case 'link_opened':
          assert.deepEqual(
            { room: room.linkOpened(peer).map(effect), private: conversations.linkOpened(peer).map(effect) },
            want,
            at,
          );
          break;
        case 'order': {
          const log = peer === null ? room : conversations.get(peer);
          assert.ok(log, at);
          assert.deepEqual(order(log.messages()), want, at);
          break;
        }
        case 'delivery':
          assert.deepEqual(conversations.get(peer)?.delivery(step.seq), want, at);
          break;
        case 'unread':
          assert.equal(conversations.unread(peer), want, at);
          break;
        case 'mark_read':
          conversations.markRead(peer);
          break;
        case 'peers':
          assert.deepEqual(conversations.peers(), want, at);
          break;
        case 'typed':
          assert.equal(conversations.typed(peer, step.now), want, at);
          break;
        case 'save':
          assert.deepEqual(conversations.save(peer), want, at);
          break;
        case 'restore':
          assert.deepEqual(order(conversations.restore(peer, step.saved, step.now)), want, at);
          break;
        default:
          assert.fail(`unknown step ${step.do}`);
      }
    });
  });
}
