// Replays the shared private-conversation scenarios
// (tests/vectors/private.json) against the web client's private.js beside
// history.js; the Rust crate peerchat-history replays the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { base64urlEncode, signWith } from '../../web/js/e2e.js';
import { History } from '../../web/js/history.js';
import { Conversations, unwrapPrivate } from '../../web/js/private.js';
import { checked, effect, scenarioKeys } from './lib/signed.mjs';

const doc = JSON.parse(readFileSync(new URL('../vectors/private.json', import.meta.url), 'utf8'));

/** @param {import('../../web/js/history.js').Message[]} messages */
const order = (messages) => messages.map((m) => [m.author, m.seq]);

/**
 * @param {() => Promise<{message: object, envelope: string}>} send
 * @param {any} want
 * @param {string} at
 */
async function sent(send, want, at) {
  let got;
  try {
    got = await send();
  } catch (e) {
    if (!want.error) throw e;
    assert.equal(/** @type {any} */ (e).code, want.error, at);
    return;
  }
  assert.deepEqual(got.message, want.message, at);
  assert.equal(got.envelope, want.envelope, at);
}

for (const scenario of doc.scenarios) {
  test(scenario.name, async () => {
    const { keys, wire } = await scenarioKeys(scenario);
    const identity = /** @type {any} */ (keys.get(scenario.me));
    const room = new History(scenario.me).setIdentity(scenario.context, wire(scenario.me));
    const conversations = new Conversations(scenario.me, {}, scenario.config?.limit).setIdentity(
      scenario.context,
      wire(scenario.me),
    );
    for (const author of scenario.confirmed) {
      assert.deepEqual(room.keyConfirmed(author, wire(author)), []);
      assert.deepEqual(conversations.keyConfirmed(author, wire(author)), []);
    }
    /**
     * Draft, sign, commit: as the page does.
     * @param {import('../../web/js/history.js').Draft} draft
     * @param {(draft: any, sig: string) => {message: object, envelope: string}} commit
     */
    const sign = async (draft, commit) => commit(draft, base64urlEncode(await signWith(identity, draft.bytes)));
    for (const [i, step] of scenario.steps.entries()) {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const { want, peer } = step;
      switch (step.do) {
        case 'send':
          await sent(() => sign(conversations.draft(peer, step), (d, s) => conversations.commit(peer, d, s)), want, at);
          break;
        case 'send_file':
          await sent(
            () => sign(conversations.draftFile(peer, step), (d, s) => conversations.commit(peer, d, s)),
            want,
            at,
          );
          break;
        case 'room_send': {
          const { envelope } = await sign(room.draft(step), (d, s) => room.commit(d, s, step.recipients));
          assert.equal(envelope, want, at);
          break;
        }
        case 'receive': {
          const body = unwrapPrivate(step.text);
          let got;
          if (body !== null) {
            try {
              const effects = conversations.handle(step.from, step.nick, body, step.now);
              got = { private: await checked(effects, (id, r) => conversations.verified(step.from, id, r)) };
            } catch (e) {
              got = { error: /** @type {any} */ (e).code };
            }
          } else {
            try {
              const effects = room.handle(step.from, step.nick, step.text, step.now);
              got = { room: await checked(effects, (id, r) => room.verified(id, r)) };
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
    }
  });
}

test('a conversation brought back before our identity key loaded signs with it once it has', async () => {
  const scenario = doc.scenarios.find((/** @type {any} */ s) => s.steps.some((/** @type {any} */ st) => st.do === 'send'));
  const { wire } = await scenarioKeys(scenario);
  const peer = scenario.steps.find((/** @type {any} */ st) => st.do === 'send').peer;
  const conversations = new Conversations(scenario.me);
  conversations.restore(peer, { messages: [], recipients: [], acks: [] }, Date.now());
  const message = { id: 'm1', nick: 'me', text: 'hello', ts: Date.now() };
  assert.throws(() => conversations.draft(peer, message), { code: 'unsigned' });
  conversations.setIdentity(scenario.context, wire(scenario.me));
  assert.ok(conversations.draft(peer, message).bytes.length > 0);
});
