// The web client's end-to-end module (web/js/e2e.js) against the
// known-answer vectors of protocol version 2, which the Rust crate replays
// too (crates/e2e/tests/vectors.rs). Node's WebCrypto is the same API the
// page uses.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  base64urlDecode,
  base64urlEncode,
  buildHello,
  certificateFingerprint,
  CODE_CONTEXT,
  combineDigits,
  E2eError,
  fingerprintFromSdp,
  generateIdentity,
  groupDigits,
  helloEnvelope,
  helloSignedBytes,
  identityFromPkcs8,
  mailboxContext,
  makePairing,
  makeSecret,
  messageSignedBytes,
  myHelloBytes,
  normalizeFingerprint,
  parseHello,
  parsePairing,
  parseSecret,
  pinName,
  publicKeyFromWire,
  Refusal,
  ReplayGuard,
  roomContext,
  RoomCrypto,
  safetyDigits,
  safetyNumber,
  signalAd,
  SignalKey,
  signalKeyBytes,
  signMessage,
  signWith,
  taggedKey,
  verifyHello,
  verifyMessage,
  verifySignature,
} from '../../web/js/e2e.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/e2e.json', import.meta.url), 'utf8'));

/** @param {string} name */
function cases(name) {
  const list = vectors[name];
  assert.ok(Array.isArray(list) && list.length > 0, `no ${name}`);
  return list;
}

/** @param {string} text */
const hex = (text) => Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
/** @param {Uint8Array} bytes */
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const utf8 = (/** @type {string} */ text) => new TextEncoder().encode(text);

/**
 * The code a call throws (an E2eError or a Refusal), or 'ok'.
 * @param {() => unknown} f
 */
async function outcome(f) {
  try {
    await f();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof E2eError || e instanceof Refusal, String(e));
    return e.code;
  }
}

/** @param {string} name */
function identity(name) {
  const v = cases('identities').find((i) => i.name === name);
  return identityFromPkcs8(v.alg, hex(v.pkcs8));
}

/** A vector's view (snake case) as a Link. */
function link(/** @type {any} */ v) {
  return {
    context: v.context,
    sid: v.sid,
    me: v.me,
    myNick: v.my_nick,
    peer: v.peer,
    peerNick: v.peer_nick,
    myFingerprint: v.my_fingerprint,
    peerFingerprint: v.peer_fingerprint,
  };
}

/** A vector's message fields (they are already named as in SignedFields). */
const fields = (/** @type {any} */ f) => ({ ...f });

test('base64url is strict', () => {
  assert.equal(base64urlEncode(Uint8Array.of(0, 1)), 'AAE');
  assert.deepEqual(base64urlDecode('AAE'), Uint8Array.of(0, 1));
  for (const bad of ['AAF', 'AAE=', '+/8', 'A', 'AA E']) assert.equal(base64urlDecode(bad), null, bad);
  for (let n = 0; n < 70; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    const text = base64urlEncode(bytes);
    assert.equal(text, Buffer.from(bytes).toString('base64url'));
    assert.deepEqual(base64urlDecode(text), bytes);
  }
});

test('secrets', () => {
  for (const c of cases('secrets')) {
    if ('bytes' in c) assert.equal(toHex(parseSecret(c.fragment)), c.bytes, c.fragment);
    else assert.throws(() => parseSecret(c.fragment), (e) => e instanceof E2eError && e.code === c.error, c.fragment);
  }
  const made = makeSecret();
  assert.equal(made.length, 43);
  assert.equal(parseSecret(`#${made}`).length, 32);
});

test('pairings and contexts', () => {
  for (const c of cases('pairings')) {
    if ('id' in c) {
      const p = parsePairing(c.text);
      assert.deepEqual([p.id, toHex(p.secret), p.context], [c.id, c.secret, c.context]);
    } else {
      assert.throws(() => parsePairing(c.text), (e) => e instanceof E2eError && e.code === c.error, c.text);
    }
  }
  const made = makePairing();
  assert.equal(parsePairing(made).secret.length, 32);
  for (const c of cases('contexts')) {
    const make = () => (c.kind === 'room' ? roomContext(c.id) : c.kind === 'mailbox' ? mailboxContext(c.id) : CODE_CONTEXT);
    if ('text' in c) assert.equal(make(), c.text);
    else assert.throws(make, (e) => e instanceof E2eError && e.code === c.error, JSON.stringify(c));
  }
});

test('signal keys', async () => {
  for (const c of cases('signal_keys')) {
    assert.equal(toHex(await signalKeyBytes(hex(c.secret), c.context)), c.key, c.context);
  }
});

test('seals with a fixed IV, byte for byte', async () => {
  for (const c of cases('seals')) {
    assert.equal(new TextDecoder().decode(signalAd(c.context, c.from, c.to)), c.ad);
    const key = await SignalKey.derive(hex(c.secret), c.context);
    assert.deepEqual(await key.seal(hex(c.iv), c.from, c.to, utf8(c.plaintext)), c.payload);
    assert.equal(new TextDecoder().decode(await key.open(c.from, c.to, c.payload)), c.plaintext);
    assert.equal(await outcome(() => key.open(c.to, c.from, c.payload)), 'tampered');
  }
});

test('replay guard scenarios', () => {
  for (const sc of cases('guard_scenarios')) {
    const config = sc.config ?? {};
    const guard = new ReplayGuard({ windowMs: config.window_ms, retired: config.retired, maxSenders: config.max_senders });
    sc.steps.forEach((/** @type {any} */ st, /** @type {number} */ i) => {
      let got = 'ok';
      try {
        guard.accept(st.from, { e: st.e, n: st.n, ts: st.ts }, st.now);
      } catch (e) {
        assert.ok(e instanceof Refusal);
        got = e.code;
      }
      assert.equal(got, st.want, `${sc.name}, step ${i}`);
    });
  }
});

test('open scenarios, key and guard together', async () => {
  for (const sc of cases('open_scenarios')) {
    const crypto = await RoomCrypto.create(hex(sc.secret), sc.context, sc.me);
    for (const [i, st] of sc.steps.entries()) {
      const at = `${sc.name}, step ${i}`;
      try {
        const plain = await crypto.open(st.from, st.payload, st.now);
        assert.deepEqual(plain, { payload: st.want.payload, stamp: { e: st.want.e, n: st.want.n, ts: st.want.ts } }, at);
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        assert.equal(e.code, st.want.refusal, `${at}: ${e.message}`);
        if (e.code === 'clock_skew') assert.equal(e.offsetMs, st.want.offset_ms, at);
      }
    }
  }
});

test('a room crypto seals for its peers, in order, and refuses what is not for it', async () => {
  const secret = parseSecret(makeSecret());
  const context = roomContext('abcdefghijklmnopqrstuv');
  const a = await RoomCrypto.create(secret, context, 'aaaa');
  const b = await RoomCrypto.create(secret, context, 'bbbb');
  const now = Date.now();
  // Many seals at once: the counter follows the call order, and opens in
  // arrival order all pass.
  const sealed = await Promise.all(Array.from({ length: 20 }, (_, i) => a.seal('bbbb', { sid: 's', i }, now)));
  assert.ok(!JSON.stringify(sealed).includes('"sid"'));
  const opened = await Promise.all(sealed.map((s) => b.open('aaaa', s, now)));
  assert.deepEqual(
    opened.map((p) => [p.payload.i, p.stamp.n, p.stamp.e]),
    opened.map((_, i) => [i, i + 1, a.epoch]),
  );
  assert.equal(await outcome(() => b.open('aaaa', sealed[3], now)), 'replayed');
  assert.equal(await outcome(() => a.open('bbbb', sealed[0], now)), 'tampered');
  assert.equal(await outcome(() => a.seal('bbbb', { n: 1 }, now)), 'reserved_field');
  // A refusal in the queue does not stall what comes after it.
  const next = await a.seal('bbbb', { sid: 't' }, now);
  assert.equal((await b.open('aaaa', next, now)).stamp.n, 21);
});

test('fingerprints from SDP and from certificates', async () => {
  for (const c of cases('fingerprints')) {
    if ('fingerprint' in c) assert.equal(fingerprintFromSdp(c.sdp), c.fingerprint, c.name);
    else assert.equal(await outcome(() => fingerprintFromSdp(c.sdp)), c.error, c.name);
  }
  for (const c of cases('fingerprint_values')) {
    if ('fingerprint' in c) assert.equal(normalizeFingerprint(c.hash, c.value), c.fingerprint);
    else assert.equal(await outcome(() => normalizeFingerprint(c.hash, c.value)), c.error, JSON.stringify(c));
  }
  for (const c of cases('certificates')) assert.equal(await certificateFingerprint(hex(c.der)), c.fingerprint);
});

test('identity keys and signatures', async () => {
  for (const c of cases('identities')) {
    const id = await identity(c.name);
    assert.deepEqual([id.publicKey.alg, base64urlEncode(id.publicKey.key)], [c.alg, c.key]);
    assert.equal(id.privateKey.extractable, false);
  }
  for (const c of cases('public_keys')) {
    if ('tagged' in c) assert.equal(toHex(taggedKey(publicKeyFromWire(c))), c.tagged);
    else assert.equal(await outcome(() => publicKeyFromWire(c)), c.error, JSON.stringify(c));
  }
  const alice = await identity('alice');
  for (const c of cases('signatures')) {
    const sig = base64urlDecode(c.sig);
    assert.ok(sig);
    assert.equal(await verifySignature(publicKeyFromWire(c), hex(c.message), sig), c.valid, JSON.stringify(c));
    if (c.valid && c.alg === 'ed25519') {
      assert.equal(base64urlEncode(await signWith(alice, hex(c.message))), c.sig);
    }
  }
});

test('identities made here: Ed25519, and P-256 where asked', async () => {
  for (const prefer of /** @type {const} */ (['ed25519', 'p256'])) {
    const id = await generateIdentity({ prefer });
    assert.equal(id.alg, prefer);
    assert.equal(id.privateKey.extractable, false);
    const sig = await signWith(id, utf8('x'));
    assert.equal(sig.length, 64);
    assert.ok(await verifySignature(id.publicKey, utf8('x'), sig));
    assert.ok(!(await verifySignature(id.publicKey, utf8('y'), sig)));
  }
});

test('hellos', async () => {
  for (const c of cases('hellos')) {
    const l = link(c.view);
    assert.equal(new TextDecoder().decode(myHelloBytes(l)), c.bytes, c.name);
    const hello = await buildHello(await identity(c.identity), l);
    assert.equal(helloEnvelope(hello), c.envelope, c.name);
  }
  for (const c of cases('hello_checks')) {
    if (c.bytes) {
      const v = c.view;
      const bytes = helloSignedBytes({
        context: v.context,
        sid: v.sid,
        signer: v.peer,
        signerNick: v.peer_nick,
        receiver: v.me,
        signerFingerprint: v.peer_fingerprint,
        receiverFingerprint: v.my_fingerprint,
      });
      assert.equal(new TextDecoder().decode(bytes), c.bytes);
    }
    const got = await outcome(() => verifyHello(parseHello(JSON.parse(c.envelope)), link(c.view)));
    assert.equal(got, c.want, c.name);
  }
});

test('signed messages', async () => {
  const signers = { alice: await identity('alice'), bob: await identity('bob') };
  for (const c of cases('messages')) {
    assert.equal(new TextDecoder().decode(messageSignedBytes(fields(c.fields))), c.bytes);
    const signer = c.fields.nick === 'bob' ? signers.bob : signers.alice;
    assert.equal(base64urlEncode(await signMessage(signer, fields(c.fields))), c.sig);
  }
  for (const c of cases('message_checks')) {
    const sig = base64urlDecode(c.sig);
    assert.ok(sig);
    const got = await outcome(() => verifyMessage(publicKeyFromWire(c), fields(c.fields), sig));
    assert.equal(got, c.want, c.name);
  }
});

test('safety numbers, libsignal vector included', async () => {
  const ls = vectors.safety.libsignal;
  const a = await safetyDigits(hex(ls.a.key), utf8(ls.a.id), ls.iterations);
  const b = await safetyDigits(hex(ls.b.key), utf8(ls.b.id), ls.iterations);
  assert.deepEqual([a, b], [ls.a.digits, ls.b.digits]);
  assert.equal(combineDigits(a, b), ls.number);
  assert.equal(combineDigits(b, a), ls.number);
  for (const c of vectors.safety.pairs) {
    const n = await safetyNumber(publicKeyFromWire(c.a), publicKeyFromWire(c.b));
    assert.equal(n, c.number);
    assert.equal(groupDigits(n), c.grouped);
  }
});

test('pin names', () => {
  for (const c of cases('pin_names')) assert.equal(pinName(c.nick), c.pin, c.nick);
});

test('outside a secure context, a clear error instead of a missing API', async () => {
  const g = /** @type {any} */ (globalThis);
  const had = Object.getOwnPropertyDescriptor(g, 'isSecureContext');
  g.isSecureContext = false;
  try {
    const err = await signalKeyBytes(new Uint8Array(32), 'code').then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof E2eError);
    assert.equal(err.code, 'insecure_context');
    assert.match(err.message, /https:\/\/.*localhost.*127\.0\.0\.1/);
  } finally {
    if (had) Object.defineProperty(g, 'isSecureContext', had);
    else delete g.isSecureContext;
  }
  assert.equal((await signalKeyBytes(new Uint8Array(32), 'code')).length, 32);
});
