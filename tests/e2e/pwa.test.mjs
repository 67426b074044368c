// Browser end-to-end: the installable app. The manifest and its icons are
// served; once the service worker is active, the room page opens with the
// network cut and shows the history kept on the device, and joins again
// when the network is back. Real server, real Chromium; run inside the
// loopback-only network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  newPageIn,
  openRoom,
  send,
  serverAndBrowser,
  waitForMessages,
  waitForPage,
  waitForStored,
} from './lib/harness.mjs';

test('the installed shell opens offline and shows the kept history', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  // Installable: a manifest with icons that load, a service worker in control.
  const manifest = await alice.evaluate(async () => {
    const href = /** @type {HTMLLinkElement} */ (document.querySelector('link[rel="manifest"]')).href;
    const json = await (await fetch(href)).json();
    const icons = await Promise.all(
      json.icons.map(async (/** @type {any} */ i) => {
        const response = await fetch(i.src);
        return { sizes: i.sizes, purpose: i.purpose, ok: response.ok, type: response.headers.get('content-type') };
      }),
    );
    return { name: json.name, display: json.display, start: json.start_url, icons };
  });
  assert.deepEqual(manifest, {
    name: 'peerchat',
    display: 'standalone',
    start: '/?app',
    icons: [
      { sizes: 'any', purpose: 'any', ok: true, type: 'image/svg+xml' },
      { sizes: '192x192', purpose: 'any', ok: true, type: 'image/png' },
      { sizes: '512x512', purpose: 'any', ok: true, type: 'image/png' },
      { sizes: '512x512', purpose: 'maskable', ok: true, type: 'image/png' },
    ],
  });
  await waitForPage(alice, () => navigator.serviceWorker.controller !== null);

  const texts = ['kept *here*', 'and https://example.com too'];
  for (const text of texts) await send(alice, text);
  await waitForStored(alice, 2);
  const context = alice.context();
  await alice.close();

  // No network: the page still opens, from the worker's cache, with the
  // history of this device, and says the server cannot be reached.
  await context.setOffline(true);
  const again = await newPageIn(context);
  await again.goto(link);
  await waitForMessages(again, ['kept here', 'and https://example.com too']);
  await again.getByRole('log').getByText('2 earlier messages from this device.').waitFor();
  assert.equal(await again.locator('[role="log"] a').getAttribute('href'), 'https://example.com/');
  await waitForPage(again, () => document.getElementById('server-status')?.dataset.state === 'offline');
  // The installed app's start page opens the room last joined (in this
  // tab: a second tab at once would be another member, with its own key).
  await again.close();
  const started = await newPageIn(context);
  await started.goto(`${server.url}/?app`);
  await started.waitForURL(link);
  await waitForMessages(started, ['kept here', 'and https://example.com too']);

  // The network is back: the page joins by itself.
  await context.setOffline(false);
  await started.getByRole('log').getByText('You are back as alice').waitFor();
  for (const page of [again, started]) {
    const errors = /** @type {any} */ (page).errors.map((/** @type {Error} */ e) => e.message);
    assert.deepEqual(errors.filter((/** @type {string} */ m) => !/ERR_INTERNET_DISCONNECTED/.test(m)), []);
  }
});
