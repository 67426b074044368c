// Replays the shared message-log scenarios (tests/vectors/history.json)
// against the web client's history.js; the Rust crate peerchat-history
// replays the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { base64urlEncode, signWith } from '../../web/js/e2e.js';
import { History, isShown } from '../../web/js/history.js';
import { checked, effect, scenarioKeys } from './lib/signed.mjs';

const doc = JSON.parse(readFileSync(new URL('../vectors/history.json', import.meta.url), 'utf8'));

const CONFIG_NAMES = {
  capacity: 'capacity',
  batch_bytes: 'batchBytes',
  sync_interval_ms: 'syncIntervalMs',
  typing_ttl_ms: 'typingTtlMs',
  typing_interval_ms: 'typingIntervalMs',
};

for (const scenario of doc.scenarios) {
  test(scenario.name, async () => {
    const config = {};
    for (const [name, value] of Object.entries(scenario.config ?? {})) config[CONFIG_NAMES[name]] = value;
    const { keys, wire } = await scenarioKeys(scenario);
    const h = new History(scenario.me, config).setIdentity(scenario.context, wire(scenario.me));
    for (const author of scenario.confirmed) assert.deepEqual(h.keyConfirmed(author, wire(author)), []);
    for (const [i, step] of scenario.steps.entries()) {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const want = step.want;
      switch (step.do) {
        case 'send':
        case 'send_file':
        case 'send_about':
          try {
            // Draft, sign, commit: as the page does.
            const draft =
              step.do === 'send' ? h.draft(step) : step.do === 'send_file' ? h.draftFile(step) : h.draftAbout({ ...step, re: step.re ?? undefined });
            const sig = base64urlEncode(await signWith(/** @type {any} */ (keys.get(scenario.me)), draft.bytes));
            const { message, envelope } = h.commit(draft, sig, step.recipients);
            assert.deepEqual(message, want.message, at);
            assert.equal(envelope, want.envelope, at);
          } catch (e) {
            if (!want.error) throw e;
            assert.equal(e.code, want.error, at);
          }
          break;
        case 'entry_state':
          assert.deepEqual(h.entryState(step.author, step.seq), want, at);
          break;
        case 'room_name':
          assert.deepEqual(h.roomName(), want, at);
          break;
        case 'receive': {
          let got;
          try {
            got = h.handle(step.from, step.nick, step.text, step.now);
          } catch (e) {
            if (!want.error) throw e;
            assert.equal(e.code, want.error, at);
            break;
          }
          assert.deepEqual(await checked(got, (id, r) => h.verified(id, r)), want.effects, at);
          break;
        }
        case 'key_confirmed':
          assert.deepEqual(await checked(h.keyConfirmed(step.author, wire(step.author)), (id, r) => h.verified(id, r)), want.effects, at);
          break;
        case 'link_opened':
          assert.deepEqual(h.linkOpened(step.peer).map(effect), want.effects, at);
          break;
        case 'typed':
          assert.equal(h.typed(step.now), want, at);
          break;
        case 'typing':
          assert.deepEqual(h.typing(step.now), want, at);
          break;
        case 'order':
          assert.deepEqual(h.messages().map((m) => [m.author, m.seq]), want, at);
          break;
        case 'position': {
          const m = h.get(step.author, step.seq);
          assert.ok(m, at);
          assert.equal(h.position(m), want, at);
          break;
        }
        case 'get':
          assert.deepEqual(h.get(step.author, step.seq) ?? null, want, at);
          break;
        case 'clear':
          h.clear();
          break;
        case 'save':
          assert.deepEqual(h.save(), want, at);
          break;
        case 'restore':
          assert.deepEqual(h.restore(step.saved).map((m) => [m.author, m.seq]), want, at);
          break;
        case 'delivery':
          assert.deepEqual(h.delivery(step.seq), want, at);
          break;
        case 'state':
          assert.deepEqual({ clock: h.clock, last_seq: h.lastSeq }, want, at);
          break;
        default:
          assert.fail(`unknown step ${step.do}`);
      }
    }
  });
}

test('save and restore keep messages, recipients and acknowledgements', async () => {
  const { keys, wire } = await scenarioKeys({ keys: { me: '07'.repeat(32) } });
  const me = /** @type {any} */ (keys.get('me'));
  const send = async (/** @type {History} */ h, /** @type {any} */ message) => {
    const draft = h.draft(message);
    return h.commit(draft, base64urlEncode(await signWith(me, draft.bytes)), message.recipients);
  };
  const key = wire('me');
  const h = new History('aaaaaaaaaaaaaaaa').setIdentity('code', key);
  await send(h, { id: 'x', nick: 'alice', text: 'hello', ts: 1, recipients: ['bbbbbbbbbbbbbbbb'] });
  h.handle('bbbbbbbbbbbbbbbb', 'bob', '{"v":1,"type":"ack","upto":1}', 0);
  const saved = JSON.parse(JSON.stringify(h.save()));
  const back = new History('aaaaaaaaaaaaaaaa').setIdentity('code', key);
  assert.equal(back.restore(saved).length, 1);
  assert.deepEqual(back.delivery(1), { acked: ['bbbbbbbbbbbbbbbb'], waiting: [] });
  assert.equal((await send(back, { id: 'y', nick: 'alice', text: 'more', ts: 2, recipients: [] })).message.seq, 2);
  assert.equal(back.restore(saved).length, 0);
});

test('only chat messages, replies and file offers are shown as messages of their own', () => {
  const base = { author: 'a', nick: 'n', id: 'i', seq: 1, clock: 1, ts: 1, text: 'x', alg: '', key: '', sig: '' };
  assert.equal(isShown(base), true);
  assert.equal(isShown({ ...base, kind: 'reply', re: { author: 'b', seq: 1 } }), true);
  assert.equal(isShown({ ...base, text: '', file: /** @type {any} */ ({ fid: 'f' }) }), true);
  for (const kind of ['edit', 'delete', 'react', 'unreact', 'room_name']) {
    assert.equal(isShown({ ...base, kind }), false, kind);
  }
});
