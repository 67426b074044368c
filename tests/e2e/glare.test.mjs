// Glare: both sides of a pair offering at the same moment. Two members of
// one room live in one page (two Room objects, each with its own member key,
// both joined through the real server), so a test can make both act in the
// same turn of the event loop, 50 times in a row.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { newPage, serverAndBrowser } from './lib/harness.mjs';

/** Sets up rooms `a` and `b` in the page, connected to each other. */
async function twoMembers(page) {
  await page.evaluate(async () => {
    const { Room } = await import('/js/room.js');
    const { randomId } = await import('/js/protocol.js');
    const { makeSecret, parseSecret } = await import('/js/e2e.js');
    const roomId = randomId();
    const secret = parseSecret(makeSecret());
    const url = `ws://${location.host}/ws`;
    const a = new Room(roomId, url, { secret });
    const b = new Room(roomId, url, { secret });
    await a.open();
    await b.open();
    a.join('a');
    await new Promise((resolve) => a.addEventListener('joined', resolve, { once: true }));
    b.join('b');
    await new Promise((resolve) => b.addEventListener('joined', resolve, { once: true }));
    Object.assign(window, { rooms: { a, b } });
  });
  await settled(page);
}

/**
 * A server, a browser and a page holding two connected members, all
 * closed after the test.
 * @param {import('node:test').TestContext} t
 * @param {(page: import('playwright-core').Page) => Promise<unknown>} [prepare]
 *   done in the page before the members join
 */
async function pairInOnePage(t, prepare = async () => {}) {
  const { server, browser } = await serverAndBrowser(t);
  const page = await newPage(browser, server.url);
  await page.goto(`${server.url}/manual`);
  await prepare(page);
  await twoMembers(page);
  return page;
}

/** Resolves once each side has exactly one open connection, the same one. */
async function settled(page) {
  await page.waitForFunction(() => {
    const { a, b } = /** @type {any} */ (window).rooms;
    const ab = a.members.get(b.selfId);
    const ba = b.members.get(a.selfId);
    return (
      a.members.size === 1 &&
      b.members.size === 1 &&
      ab?.link?.isOpen &&
      ba?.link?.isOpen &&
      ab.link.sid === ba.link.sid &&
      ab.link.pc.signalingState === 'stable' &&
      ba.link.pc.signalingState === 'stable'
    );
  });
}

/** Sends from a to b and waits until b holds it. */
async function roundTrip(page, text) {
  await page.evaluate((text) => /** @type {any} */ (window).rooms.a.send(text), text);
  await page.waitForFunction(
    (text) => /** @type {any} */ (window).rooms.b.history.messages().some((m) => m.text === text),
    text,
  );
}

test('both sides start a new connection at the same moment, 50 times: they end with one', async (t) => {
  const page = await pairInOnePage(t);

  for (let i = 0; i < 50; i += 1) {
    const before = await page.evaluate(() => {
      const { a, b } = /** @type {any} */ (window).rooms;
      const ab = a.members.get(b.selfId);
      const ba = b.members.get(a.selfId);
      const sid = ab.link.sid;
      // Both drop the connection and offer a new one, in the same turn.
      a.dropLink(ab);
      b.dropLink(ba);
      ab.link = a.newLink(ab, null);
      ba.link = b.newLink(ba, null);
      return { sid, crossing: ab.link.sid !== ba.link.sid };
    });
    assert.ok(before.crossing, 'two different connection ids crossed');
    await settled(page);
    const sid = await page.evaluate(() => {
      const { a, b } = /** @type {any} */ (window).rooms;
      return a.members.get(b.selfId).link.sid;
    });
    assert.notEqual(sid, before.sid, `round ${i}: a new connection`);
    await roundTrip(page, `after crossing offers ${i}`);
  }
  assert.deepEqual(page.errors, []);
});

test('both sides restart ICE at the same moment, 50 times: perfect negotiation settles each one', async (t) => {
  const page = await pairInOnePage(t);

  /** The ICE username fragment each side sees the other use. */
  const fragments = () =>
    page.evaluate(() => {
      const { a, b } = /** @type {any} */ (window).rooms;
      const ufrag = (/** @type {RTCPeerConnection} */ pc) => /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription?.sdp ?? '')?.[1];
      return [ufrag(a.members.get(b.selfId).link.pc), ufrag(b.members.get(a.selfId).link.pc)];
    });

  for (let i = 0; i < 50; i += 1) {
    const before = await fragments();
    const sid = await page.evaluate(() => {
      const { a, b } = /** @type {any} */ (window).rooms;
      const ab = a.members.get(b.selfId);
      const ba = b.members.get(a.selfId);
      ab.link.pc.restartIce();
      ba.link.pc.restartIce();
      return ab.link.sid;
    });
    // Both sides' offers collided; one gave way, and each side now uses the
    // other's new credentials, on the same connection.
    await page.waitForFunction(
      (before) => {
        const { a, b } = /** @type {any} */ (window).rooms;
        const ufrag = (/** @type {RTCPeerConnection} */ pc) => /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription?.sdp ?? '')?.[1];
        const pa = a.members.get(b.selfId).link.pc;
        const pb = b.members.get(a.selfId).link.pc;
        return (
          ufrag(pa) !== before[0] &&
          ufrag(pb) !== before[1] &&
          pa.signalingState === 'stable' &&
          pb.signalingState === 'stable' &&
          pa.connectionState === 'connected' &&
          pb.connectionState === 'connected'
        );
      },
      before,
    );
    await settled(page);
    const after = await page.evaluate(() => {
      const { a, b } = /** @type {any} */ (window).rooms;
      return a.members.get(b.selfId).link.sid;
    });
    assert.equal(after, sid, `round ${i}: still the same connection`);
    await roundTrip(page, `after both restarted ICE ${i}`);
  }
  assert.deepEqual(page.errors, []);
});

test('each side sends one sync on a new channel, the side that received it too', async (t) => {
  // Count the syncs each channel sends.
  const page = await pairInOnePage(t, (page) =>
    page.evaluate(() => {
      const syncs = new Map();
      const send = RTCDataChannel.prototype.send;
      RTCDataChannel.prototype.send = function (data) {
        if (typeof data === 'string' && data.includes('"type":"sync"')) syncs.set(this, (syncs.get(this) ?? 0) + 1);
        return send.call(this, data);
      };
      Object.assign(window, { syncs });
    }),
  );
  await roundTrip(page, 'after the syncs');
  const counts = await page.evaluate(() => {
    const { a, b } = /** @type {any} */ (window).rooms;
    const syncs = /** @type {any} */ (window).syncs;
    return [syncs.get(a.members.get(b.selfId).link.dc), syncs.get(b.members.get(a.selfId).link.dc)];
  });
  // b joined last and started the connection; a received its channel.
  assert.deepEqual(counts, [1, 1]);
  assert.deepEqual(page.errors, []);
});
