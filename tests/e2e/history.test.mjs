// Replays the shared message-log scenarios (tests/vectors/history.json)
// against the web client's history.js; the Rust crate peerchat-history
// replays the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { History } from '../../web/js/history.js';

const doc = JSON.parse(readFileSync(new URL('../vectors/history.json', import.meta.url), 'utf8'));

const CONFIG_NAMES = {
  capacity: 'capacity',
  batch_bytes: 'batchBytes',
  sync_interval_ms: 'syncIntervalMs',
  typing_ttl_ms: 'typingTtlMs',
  typing_interval_ms: 'typingIntervalMs',
};

/** @param {import('../../web/js/history.js').Effect} e */
function effect(e) {
  if ('added' in e) return { added: [e.added.author, e.added.seq] };
  return e;
}

for (const scenario of doc.scenarios) {
  test(scenario.name, () => {
    const config = {};
    for (const [name, value] of Object.entries(scenario.config ?? {})) config[CONFIG_NAMES[name]] = value;
    const h = new History(scenario.me, config);
    scenario.steps.forEach((step, i) => {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const want = step.want;
      switch (step.do) {
        case 'send':
        case 'send_file':
          try {
            const { message, envelope } = step.do === 'send' ? h.send(step) : h.sendFile(step);
            assert.deepEqual(message, want.message, at);
            assert.equal(envelope, want.envelope, at);
          } catch (e) {
            if (!want.error) throw e;
            assert.equal(e.code, want.error, at);
          }
          break;
        case 'receive':
          try {
            const got = h.handle(step.from, step.nick, step.text, step.now);
            assert.deepEqual(got.map(effect), want.effects, at);
          } catch (e) {
            if (!want.error) throw e;
            assert.equal(e.code, want.error, at);
          }
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
    });
  });
}

test('save and restore keep messages, recipients and acknowledgements', () => {
  const h = new History('aaaaaaaaaaaaaaaa');
  h.send({ id: 'x', nick: 'alice', text: 'hello', ts: 1, recipients: ['bbbbbbbbbbbbbbbb'] });
  h.handle('bbbbbbbbbbbbbbbb', 'bob', '{"v":1,"type":"ack","upto":1}', 0);
  const saved = JSON.parse(JSON.stringify(h.save()));
  const back = new History('aaaaaaaaaaaaaaaa');
  assert.equal(back.restore(saved).length, 1);
  assert.deepEqual(back.delivery(1), { acked: ['bbbbbbbbbbbbbbbb'], waiting: [] });
  assert.equal(back.send({ id: 'y', nick: 'alice', text: 'more', ts: 2, recipients: [] }).message.seq, 2);
  assert.equal(back.restore(saved).length, 0);
});
