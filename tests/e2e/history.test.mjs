// Replays the shared message-log scenarios (tests/vectors/history.json)
// against the web client's history.js; the Rust crate peerchat-history
// replays the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  base64urlDecode,
  base64urlEncode,
  identityFromPkcs8,
  publicKeyFromWire,
  publicKeyToWire,
  signWith,
  verifySignature,
} from '../../web/js/e2e.js';
import { History } from '../../web/js/history.js';

/** PKCS#8 (version 1) of an Ed25519 key: this prefix, then the 32-byte seed. */
const PKCS8_PREFIX = '302e020100300506032b657004220420';

/** @param {string} hex */
const fromHex = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));

/**
 * The log's effects, with every check it asks for done at once and its
 * answer in place of the request (as the page does, asynchronously).
 * @param {History} h
 * @param {import('../../web/js/history.js').Effect[]} effects
 * @returns {Promise<unknown[]>}
 */
async function checked(h, effects) {
  const out = [];
  for (const e of effects) {
    if ('verify' in e) {
      const results = await Promise.all(
        e.verify.items.map(async (item) => {
          const sig = base64urlDecode(item.sig);
          return sig !== null && verifySignature(publicKeyFromWire(item), item.bytes, sig);
        }),
      );
      out.push(...(await checked(h, h.verified(e.verify.id, results))));
    } else {
      out.push(effect(e));
    }
  }
  return out;
}

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
  test(scenario.name, async () => {
    const config = {};
    for (const [name, value] of Object.entries(scenario.config ?? {})) config[CONFIG_NAMES[name]] = value;
    /** @type {Map<string, import('../../web/js/e2e.js').Identity>} */
    const keys = new Map();
    for (const [id, seed] of Object.entries(scenario.keys)) {
      keys.set(id, await identityFromPkcs8('ed25519', fromHex(PKCS8_PREFIX + seed)));
    }
    const wire = (/** @type {string} */ id) => publicKeyToWire(/** @type {any} */ (keys.get(id)).publicKey);
    const h = new History(scenario.me, config).setIdentity(scenario.context, wire(scenario.me));
    for (const author of scenario.confirmed) assert.deepEqual(h.keyConfirmed(author, wire(author)), []);
    for (const [i, step] of scenario.steps.entries()) {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const want = step.want;
      switch (step.do) {
        case 'send':
          try {
            // Draft, sign, commit: as the page does.
            const draft = h.draft(step);
            const sig = base64urlEncode(await signWith(/** @type {any} */ (keys.get(scenario.me)), draft.bytes));
            const { message, envelope } = h.commit(draft, sig, step.recipients);
            assert.deepEqual(message, want.message, at);
            assert.equal(envelope, want.envelope, at);
          } catch (e) {
            if (!want.error) throw e;
            assert.equal(e.code, want.error, at);
          }
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
          assert.deepEqual(await checked(h, got), want.effects, at);
          break;
        }
        case 'key_confirmed':
          assert.deepEqual(await checked(h, h.keyConfirmed(step.author, wire(step.author))), want.effects, at);
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
  const me = await identityFromPkcs8('ed25519', fromHex(PKCS8_PREFIX + '07'.repeat(32)));
  const send = async (/** @type {History} */ h, /** @type {any} */ message) => {
    const draft = h.draft(message);
    return h.commit(draft, base64urlEncode(await signWith(me, draft.bytes)), message.recipients);
  };
  const key = publicKeyToWire(me.publicKey);
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
