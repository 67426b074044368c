// The browser side of protocol version 2's keys, in real headless Chromium:
// the identity key and pins kept in IndexedDB (web/js/keystore.js), and the
// known-answer vectors replayed by Chromium's own WebCrypto (BoringSSL),
// as Node's (OpenSSL) replays them in crypto.test.mjs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { launchBrowser, startServer } from './lib/harness.mjs';

const vectors = JSON.parse(readFileSync(new URL('../vectors/e2e.json', import.meta.url), 'utf8'));

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * A page of the server's (a secure context: http://127.0.0.1) in `context`,
 * with nothing of the client running in it.
 * @param {import('playwright-core').BrowserContext} context
 */
async function blankPage(context) {
  const page = await context.newPage();
  await page.goto(`${server.url}/favicon.svg`);
  return page;
}

/**
 * This browser profile's identity as the page sees it: its algorithm, its
 * public key, whether the private key is extractable, and whether a
 * signature by it verifies.
 * @param {import('playwright-core').Page} page
 */
function identityOf(page) {
  return page.evaluate(async () => {
    const e2e = await import('/js/e2e.js');
    const { KeyStore } = await import('/js/keystore.js');
    const store = await KeyStore.open();
    if (!store) throw new Error('no IndexedDB');
    const id = await store.identity();
    const bytes = new TextEncoder().encode('peerchat');
    const sig = await e2e.signWith(id, bytes);
    return {
      alg: id.alg,
      key: e2e.base64urlEncode(id.publicKey.key),
      extractable: id.privateKey.extractable,
      verifies: await e2e.verifySignature(id.publicKey, bytes, sig),
    };
  });
}

test('one identity per browser profile, kept across tabs and reloads, never extractable', async () => {
  const context = await browser.newContext();
  const [tab1, tab2] = [await blankPage(context), await blankPage(context)];
  // Two tabs of a fresh profile make their identity at the same moment.
  const [a, b] = await Promise.all([identityOf(tab1), identityOf(tab2)]);
  assert.deepEqual(a, b);
  assert.equal(a.alg, 'ed25519');
  assert.equal(a.extractable, false);
  assert.ok(a.verifies);
  await tab1.reload();
  assert.deepEqual(await identityOf(tab1), a);
  // The key cannot be read out of the database either.
  const exported = await tab1.evaluate(async () => {
    const { KeyStore } = await import('/js/keystore.js');
    const id = await (await KeyStore.open())?.identity();
    if (!id) return 'no identity';
    return crypto.subtle.exportKey('pkcs8', id.privateKey).then(
      () => 'exported',
      (e) => e.name,
    );
  });
  assert.equal(exported, 'InvalidAccessError');
  // Another profile (or this one after its site data is cleared): another key.
  const other = await browser.newContext();
  const c = await identityOf(await blankPage(other));
  assert.notEqual(c.key, a.key);
  await context.close();
  const again = await browser.newContext();
  assert.notEqual((await identityOf(await blankPage(again))).key, a.key);
  await other.close();
  await again.close();
});

test('pins: first use, the same key, a changed key, verification', async () => {
  const context = await browser.newContext();
  const page = await blankPage(context);
  const steps = await page.evaluate(async () => {
    const e2e = await import('/js/e2e.js');
    const { KeyStore } = await import('/js/keystore.js');
    const store = await KeyStore.open();
    if (!store) throw new Error('no IndexedDB');
    const k1 = (await e2e.generateIdentity()).publicKey;
    const k2 = (await e2e.generateIdentity({ prefer: 'p256' })).publicKey;
    const room = 'abcdefghijklmnopqrstuv';
    const out = [];
    /** @param {any} r */
    const show = (r) => ({
      status: r.status,
      verified: r.pin.verified,
      pinned: e2e.base64urlEncode(r.pin.key.key) === e2e.base64urlEncode(k1.key) ? 'k1' : 'k2',
    });
    out.push(show(await store.check(room, 'Alice', k1)));
    out.push(show(await store.check(room, 'alice', k1)));
    out.push(await store.setVerified(room, 'ALICE', k2));
    out.push(await store.setVerified(room, 'alice', k1));
    out.push(show(await store.check(room, 'Alice', k1)));
    // A look-alike (full-width letters) with another key.
    out.push(show(await store.check(room, 'Ａｌｉｃｅ', k2)));
    await store.replacePin(room, 'Ａｌｉｃｅ', k2);
    out.push(show(await store.check(room, 'alice', k2)));
    // Another room knows nothing of it.
    out.push(show(await store.check('zbcdefghijklmnopqrstuv', 'alice', k2)));
    const pin = await store.pin(room, 'alice');
    out.push(pin && pin.key.alg);
    return out;
  });
  assert.deepEqual(steps, [
    { status: 'new', verified: false, pinned: 'k1' },
    { status: 'same', verified: false, pinned: 'k1' },
    false,
    true,
    { status: 'same', verified: true, pinned: 'k1' },
    { status: 'changed', verified: true, pinned: 'k1' },
    { status: 'same', verified: false, pinned: 'k2' },
    { status: 'new', verified: false, pinned: 'k2' },
    'p256',
  ]);
  // The pins outlive the page.
  await page.reload();
  const kept = await page.evaluate(async () => {
    const { KeyStore } = await import('/js/keystore.js');
    const pin = await (await KeyStore.open())?.pin('abcdefghijklmnopqrstuv', 'ALICE');
    return pin ? [pin.key.alg, pin.verified] : null;
  });
  assert.deepEqual(kept, ['p256', false]);
  await context.close();
});

test('a pin and its verified mark follow a rename, for the pinned key only', async () => {
  const context = await browser.newContext();
  const page = await blankPage(context);
  const steps = await page.evaluate(async () => {
    const e2e = await import('/js/e2e.js');
    const { KeyStore } = await import('/js/keystore.js');
    const store = await KeyStore.open();
    if (!store) throw new Error('no IndexedDB');
    const k1 = (await e2e.generateIdentity()).publicKey;
    const k2 = (await e2e.generateIdentity()).publicKey;
    const room = 'abcdefghijklmnopqrstuv';
    await store.check(room, 'alice', k1);
    await store.setVerified(room, 'alice', k1);
    return [
      await store.carryPin(room, 'alice', 'ally', k2),
      await store.pin(room, 'ally'),
      await store.carryPin(room, 'alice', 'ally', k1),
      (await store.check(room, 'ALLY', k1)).status,
      (await store.pin(room, 'ally'))?.verified,
      (await store.pin(room, 'alice'))?.verified,
    ];
  });
  assert.deepEqual(steps, [false, null, true, 'same', true, true]);
  await context.close();
});

test("the known-answer vectors in Chromium's WebCrypto", async () => {
  const context = await browser.newContext();
  const page = await blankPage(context);
  const failures = await page.evaluate(async (v) => {
    const e2e = await import('/js/e2e.js');
    const failed = [];
    /** @param {string} text */
    const hex = (text) => Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
    /** @param {Uint8Array} b */
    const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    const dec = (/** @type {Uint8Array} */ b) => new TextDecoder().decode(b);
    /** @param {string} what @param {unknown} got @param {unknown} want */
    const eq = (what, got, want) => {
      if (JSON.stringify(got) !== JSON.stringify(want)) failed.push({ what, got, want });
    };
    /** @param {() => unknown} f */
    const outcome = async (f) => {
      try {
        await f();
        return 'ok';
      } catch (e) {
        return /** @type {any} */ (e).code ?? String(e);
      }
    };
    for (const c of v.signal_keys) eq(`key ${c.context}`, toHex(await e2e.signalKeyBytes(hex(c.secret), c.context)), c.key);
    for (const c of v.seals) {
      const key = await e2e.SignalKey.derive(hex(c.secret), c.context);
      eq('seal', await key.seal(hex(c.iv), c.from, c.to, new TextEncoder().encode(c.plaintext)), c.payload);
    }
    for (const sc of v.open_scenarios) {
      const crypto = await e2e.RoomCrypto.create(hex(sc.secret), sc.context, sc.me);
      for (const [i, st] of sc.steps.entries()) {
        const want = st.want.refusal ?? 'ok';
        eq(`${sc.name} ${i}`, await outcome(() => crypto.open(st.from, st.payload, st.now)), want);
      }
    }
    const ids = Object.fromEntries(
      await Promise.all(v.identities.map(async (/** @type {any} */ i) => [i.name, await e2e.identityFromPkcs8(i.alg, hex(i.pkcs8))])),
    );
    for (const c of v.signatures) {
      eq('signature', await e2e.verifySignature(e2e.publicKeyFromWire(c), hex(c.message), e2e.base64urlDecode(c.sig) ?? new Uint8Array()), c.valid);
    }
    /** @param {any} x */
    const link = (x) => ({
      context: x.context, sid: x.sid, me: x.me, myNick: x.my_nick, peer: x.peer, peerNick: x.peer_nick,
      myFingerprint: x.my_fingerprint, peerFingerprint: x.peer_fingerprint,
    });
    for (const c of v.hellos) {
      eq(c.name, dec(e2e.myHelloBytes(link(c.view))), c.bytes);
      eq(c.name, e2e.helloEnvelope(await e2e.buildHello(ids[c.identity], link(c.view))), c.envelope);
    }
    for (const c of v.hello_checks) {
      eq(c.name, await outcome(async () => e2e.verifyHello(e2e.parseHello(JSON.parse(c.envelope)), link(c.view))), c.want);
    }
    for (const c of v.messages) {
      const signer = c.fields.nick === 'bob' ? ids.bob : ids.alice;
      eq('message', e2e.base64urlEncode(await e2e.signMessage(signer, c.fields)), c.sig);
    }
    for (const c of v.message_checks) {
      const sig = e2e.base64urlDecode(c.sig) ?? new Uint8Array();
      eq(c.name, await outcome(() => e2e.verifyMessage(e2e.publicKeyFromWire(c), c.fields, sig)), c.want);
    }
    const ls = v.safety.libsignal;
    const [a, b] = await Promise.all([
      e2e.safetyDigits(hex(ls.a.key), new TextEncoder().encode(ls.a.id), ls.iterations),
      e2e.safetyDigits(hex(ls.b.key), new TextEncoder().encode(ls.b.id), ls.iterations),
    ]);
    eq('libsignal', e2e.combineDigits(a, b), ls.number);
    for (const c of v.safety.pairs) {
      eq('safety', await e2e.safetyNumber(e2e.publicKeyFromWire(c.a), e2e.publicKeyFromWire(c.b)), c.number);
    }
    for (const c of v.fingerprints) eq(c.name, await outcome(() => e2e.fingerprintFromSdp(c.sdp)), c.fingerprint ? 'ok' : c.error);
    for (const c of v.pin_names) eq(c.nick, e2e.pinName(c.nick), c.pin);
    return failed;
  }, vectors);
  assert.deepEqual(failures, []);
  await context.close();
});
