// PeerJS apps on peerchat: the unchanged `peerjs` client from npm (its
// browser bundle, served by this test from node_modules) in headless
// Chromium, talking to `peerchat serve --peerjs`. The pages come from an
// origin of their own, as a PeerJS app's do, allowed with --allowed-origin;
// they take their ICE servers (with TURN credentials) from
// /peerjs/{key}/ice-servers and connect through the embedded relay only.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { test } from 'node:test';

import { ROOT, launchBrowser, newPage, startServer, waitForPage } from './lib/harness.mjs';

const BUNDLE = path.join(ROOT, 'tests', 'e2e', 'node_modules', 'peerjs', 'dist', 'peerjs.min.js');
const PAGE = '<!doctype html><meta charset="utf-8"><title>a PeerJS app</title><script src="/peerjs.min.js"></script>';

/** Serves the test page and the client's bundle on a free port. */
async function startApp() {
  const bundle = await readFile(BUNDLE);
  const http = createServer((req, res) => {
    if (req.url === '/peerjs.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (http.address());
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => http.close(resolve)) };
}

/**
 * Opens the app in a page of its own and creates a `Peer` there (with `id`,
 * or asking the server for one), recording its events in `window.t`.
 * Resolves once it is open, to its id; or, with `expectError`, to the
 * type of its first error.
 * @param {import('playwright-core').Browser} browser
 * @param {string} app the page's origin
 * @param {string} server peerchat's URL
 * @param {string | null} id
 */
async function openPeer(browser, app, server, id) {
  const page = await newPage(browser, app);
  await page.goto(`${app}/`);
  await page.evaluate(
    async ({ server, id }) => {
      const w = /** @type {any} */ (window);
      const url = new URL(server);
      // The app's one change: where the server is, and peerchat's relay.
      const config = await (await fetch(`${server}/peerjs/peerjs/ice-servers`)).json();
      const options = {
        host: url.hostname,
        port: Number(url.port),
        path: '/peerjs',
        config: { ...config, iceTransportPolicy: 'relay' },
      };
      const peer = id ? new w.peerjs.Peer(id, options) : new w.peerjs.Peer(options);
      const t = { peer, events: /** @type {string[]} */ ([]), errors: /** @type {string[]} */ ([]), received: /** @type {any[]} */ ([]), conns: /** @type {any[]} */ ([]) };
      w.t = t;
      const track = (/** @type {any} */ conn) => {
        t.conns.push(conn);
        conn.on('data', (/** @type {any} */ data) => t.received.push(data));
      };
      peer.on('open', (/** @type {string} */ id) => t.events.push(`open ${id}`));
      peer.on('disconnected', () => t.events.push('disconnected'));
      peer.on('close', () => t.events.push('close'));
      peer.on('error', (/** @type {any} */ e) => t.errors.push(e.type));
      peer.on('connection', track);
      w.track = track;
    },
    { server, id },
  );
  return page;
}

/**
 * Resolves once the page's peer recorded `event` (like `open alice`) or
 * the error type `error`; resolves to the page's events and errors.
 * @param {import('playwright-core').Page} page
 * @param {{event?: string, error?: string}} what
 */
function waitFor(page, what) {
  return waitForPage(
    page,
    ({ event, error }) => {
      const t = /** @type {any} */ (window).t;
      const seen = (event && t.events.includes(event)) || (error && t.errors.includes(error));
      return seen ? { events: t.events, errors: t.errors } : null;
    },
    what,
  );
}

/** The id a page's peer opened with. */
async function openId(page) {
  const { events } = await waitForPage(page, () => {
    const t = /** @type {any} */ (window).t;
    return t.events.some((e) => e.startsWith('open ')) ? { events: t.events } : null;
  });
  return events.find((e) => e.startsWith('open ')).slice('open '.length);
}

/**
 * Opens a DataConnection from `from` to `to` (by id), waits until both
 * ends are open, and sends a message each way. Resolves to the candidate
 * type of the route the connection took.
 * @param {import('playwright-core').Page} from
 * @param {import('playwright-core').Page} to
 * @param {string} toId
 * @param {string} tag
 */
async function exchange(from, to, toId, tag) {
  const before = await to.evaluate(() => /** @type {any} */ (window).t.conns.length);
  await from.evaluate(
    ({ toId }) => {
      const w = /** @type {any} */ (window);
      const conn = w.t.peer.connect(toId, { reliable: true });
      w.track(conn);
      conn.on('open', () => conn.send(`hello from ${w.t.peer.id}`));
    },
    { toId },
  );
  await waitForPage(
    to,
    ({ before }) => {
      const conns = /** @type {any} */ (window).t.conns;
      return conns.length > before && conns[conns.length - 1].open;
    },
    { before },
  );
  await to.evaluate(({ tag }) => {
    const conns = /** @type {any} */ (window).t.conns;
    conns[conns.length - 1].send(`reply ${tag}`);
  }, { tag });
  const fromId = await from.evaluate(() => /** @type {any} */ (window).t.peer.id);
  await waitForPage(to, (text) => /** @type {any} */ (window).t.received.includes(text), `hello from ${fromId}`);
  await waitForPage(from, (text) => /** @type {any} */ (window).t.received.includes(text), `reply ${tag}`);
  // The route the connection took, from the sender's side (the stats may
  // name it a moment after the first messages went).
  return waitForPage(from, async () => {
    const conns = /** @type {any} */ (window).t.conns;
    const pc = /** @type {RTCPeerConnection} */ (conns[conns.length - 1].peerConnection);
    const stats = [...(await pc.getStats()).values()];
    const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
    return stats.find((s) => s.id === pair?.localCandidateId)?.candidateType ?? null;
  });
}

test('unchanged PeerJS apps on peerchat: connect, errors, reconnect, server gone', async (t) => {
  const app = await startApp();
  const server = await startServer([
    '--peerjs',
    '--peerjs-expire-timeout', '1s',
    '--allowed-origin', app.origin,
    '--turn-allow-private',
  ]);
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop('SIGKILL');
    await app.close();
  });

  const alice = await openPeer(browser, app.origin, server.url, 'alice-app');
  const bob = await openPeer(browser, app.origin, server.url, null);
  assert.equal(await openId(alice), 'alice-app');
  const bobId = await openId(bob);
  assert.match(bobId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'an id from GET /peerjs/peerjs/id');

  await t.test('two peers open a DataConnection through peerchat and its relay, messages go both ways', async () => {
    assert.equal(await exchange(bob, alice, 'alice-app', 'first'), 'relay');
  });

  await t.test('asking for a taken id gives unavailable-id', async () => {
    const copycat = await openPeer(browser, app.origin, server.url, 'alice-app');
    await waitFor(copycat, { error: 'unavailable-id' });
  });

  await t.test('connecting to an unknown id gives peer-unavailable', async () => {
    await bob.evaluate(() => /** @type {any} */ (window).t.peer.connect('nobody-here'));
    await waitFor(bob, { error: 'peer-unavailable' });
  });

  await t.test('disconnect() then reconnect() keeps the id, and others still reach it', async () => {
    await alice.evaluate(() => /** @type {any} */ (window).t.peer.disconnect());
    await waitFor(alice, { event: 'disconnected' });
    await alice.evaluate(() => {
      const t = /** @type {any} */ (window).t;
      t.events.length = 0;
      t.peer.reconnect();
    });
    const { events } = await waitFor(alice, { event: 'open alice-app' });
    assert.deepEqual(events, ['open alice-app']);
    assert.equal(await exchange(bob, alice, 'alice-app', 'after reconnect'), 'relay');
  });

  await t.test('reconnect() after a blip the server did not notice keeps the id too', async () => {
    // From now on the page's WebSockets go through the test, which keeps
    // the server's side open when the page closes its side: the server
    // still holds the old connection when the client comes back.
    await alice.routeWebSocket(/\/peerjs\/peerjs\?/, (ws) => {
      ws.connectToServer();
      ws.onClose(() => {});
    });
    await alice.evaluate(() => /** @type {any} */ (window).t.peer.disconnect());
    await waitFor(alice, { event: 'disconnected' });
    await alice.evaluate(() => /** @type {any} */ (window).t.peer.reconnect());
    await waitFor(alice, { event: 'open alice-app' });
    await alice.evaluate(() => {
      const t = /** @type {any} */ (window).t;
      t.events.length = 0;
      t.peer.disconnect();
    });
    await waitFor(alice, { event: 'disconnected' });
    await alice.evaluate(() => /** @type {any} */ (window).t.peer.reconnect());
    // peer 1.0.2 never answers this (peerjs-protocol.test.mjs shows it).
    await waitFor(alice, { event: 'open alice-app' });
    assert.equal(await exchange(bob, alice, 'alice-app', 'after a blip'), 'relay');
  });

  await t.test('the server going away is reported to every client', async () => {
    await server.stop('SIGKILL');
    for (const page of [alice, bob]) {
      const { errors } = await waitFor(page, { event: 'disconnected' });
      assert.ok(errors.includes('network'), `${errors}`);
    }
  });
});
