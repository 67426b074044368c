// Browser end-to-end: a page never waits without saying why. Joining while
// the server is down, losing it, a server restarting, and relay-only mode
// with a relay that cannot be reached. Real server, real Chromium; run
// inside the loopback-only network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  join,
  launchBrowser,
  newPage,
  openRoom,
  restartServer,
  startServer,
  unexpectedErrors,
  waitForServerOpen,
} from './lib/harness.mjs';

test('the server down while joining, restarting, lost: the page says so, counts down, and Retry now reconnects at once', async (t) => {
  let server = await startServer();
  const first = server;
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await first.stop('SIGKILL');
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await newPage(browser, server.url);
  await bob.goto(link);
  await server.stop('SIGKILL');

  // Joining with the server down: the page says why it waits, and joins by
  // itself once the server answers (here, at once on Retry now).
  await join(bob, 'bob');
  await bob.getByRole('alert').getByText('The server does not answer').waitFor();
  await bob.getByRole('status').getByText('Cannot reach the server.').waitFor();
  const retry = bob.getByRole('button', { name: 'Retry now' });
  await retry.waitFor();
  assert.match((await bob.locator('#retry-in').textContent()) ?? '', /^Retrying in \d+ s\.$/);
  server = await restartServer(first);
  await retry.click();
  await bob.getByRole('log').getByText('You joined as bob').waitFor();
  await retry.waitFor({ state: 'hidden' });

  // A graceful stop: the pages say the server is restarting (its last
  // word reaches them, with a clean close) and count down to the next try.
  // Both are connected to this server first (alice may still be waiting to
  // retry after the first one went away).
  await waitForServerOpen(alice);
  await waitForServerOpen(bob);
  await server.stop('SIGTERM');
  for (const page of [alice, bob]) {
    await page
      .getByRole('status')
      .getByText(/^The server is restarting\. Members you are connected to can still chat with you\.$/)
      .waitFor();
    await page.getByText(/^Retrying in \d+ s\.$/).waitFor();
  }
  server = await restartServer(first);
  for (const page of [alice, bob]) {
    await page.getByRole('button', { name: 'Retry now' }).click();
    await waitForServerOpen(page);
  }
  for (const page of [alice, bob]) assert.deepEqual(unexpectedErrors(page), [], 'no page errors');
});

test('relay-only with a relay that cannot be reached: the page says why nobody connects and what to do', async (t) => {
  // A TURN server that does not exist: nothing listens on port 9.
  const server = await startServer(['--turn-url', 'turn:127.0.0.1:9', '--turn-secret', 'not-a-real-relay']);
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await newPage(browser, server.url);
  await alice.goto(`${server.url}/?relay=1`);
  await alice.waitForURL(/\/r\//);
  await join(alice, 'alice');
  // The room link as the page shows it: `?relay=1`, then the secret.
  const link = alice.url();
  assert.match(link, /\?relay=1#/);
  const bob = await newPage(browser, server.url);
  await bob.goto(link);
  await join(bob, 'bob');
  for (const page of [alice, bob]) {
    await page.getByRole('log').getByText('the relay cannot be reached', { exact: false }).waitFor();
    await page.getByRole('log').getByText('join again without “Hide my IP address”', { exact: false }).waitFor();
  }
});
