// The long-poll fallback: a page whose WebSocket is cut as soon as it opens
// (as by a proxy that does not pass upgrades) joins over /poll, chats with
// WebSocket members and a terminal client on --transport poll, survives a
// server restart, and moves to a WebSocket once one gets through.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  join,
  launchBrowser,
  newPage,
  openRoom,
  restartServer,
  send,
  startServer,
  unexpectedErrors,
  waitForMembers,
  waitForMessage,
  waitForServerOpen,
  WAIT_MS,
} from './lib/harness.mjs';

/**
 * The server's /healthz.
 * @param {string} url
 */
async function health(url) {
  return (await fetch(`${url}/healthz`)).json();
}

/**
 * Resolves once `check()` is true, polling every 100 ms.
 * @param {() => Promise<boolean>} check
 * @param {string} what
 * @param {number} [ms]
 */
async function eventually(check, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a page without WebSockets chats over long polling, across a server restart, then moves to a WebSocket', async (t) => {
  let server = await startServer();
  const browser = await launchBrowser();
  /** @type {LineClient | null} */
  let native = null;
  t.after(async () => {
    native?.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();

  // Polly's WebSockets are cut as soon as they open, until `blocked` is
  // lifted; then they go through to the server.
  const polly = await newPage(browser, server.url);
  let blocked = true;
  let cut = 0;
  let through = 0;
  await polly.routeWebSocket(/\/ws$/, (ws) => {
    if (blocked) {
      cut += 1;
      ws.close();
    } else {
      through += 1;
      ws.connectToServer();
    }
  });
  let polls = 0;
  polly.on('request', (request) => {
    if (new URL(request.url()).pathname.startsWith('/poll')) polls += 1;
  });
  await polly.goto(link);
  await join(polly, 'polly');
  await polly.getByRole('log').getByText('You joined as polly').waitFor();
  assert.ok(cut >= 1, 'the WebSocket was tried and cut');
  assert.ok(polls >= 2, 'the page fell back to /poll');
  assert.equal((await health(server.url)).poll_sessions, 1);

  await waitForMembers(alice, ['polly']);
  await waitForMembers(polly, ['alice']);
  await send(polly, 'over long polling');
  await waitForMessage(alice, 'over long polling', 'polly');
  await send(alice, 'and back');
  await waitForMessage(polly, 'and back', 'alice');

  // A terminal client that speaks long polling only.
  native = new LineClient('rusty', BIN, ['chat', link, '--name', 'rusty', '--plain', '--transport', 'poll']);
  await native.waitFor((l) => l.startsWith('* joined as rusty'), 'err');
  await waitForMembers(polly, ['alice', 'rusty']);
  native.say('polling from a terminal');
  await waitForMessage(polly, 'polling from a terminal', 'rusty');
  assert.equal((await health(server.url)).poll_sessions, 2);

  // The server restarts: everyone comes back, polly over /poll again.
  await server.stop('SIGKILL');
  server = await restartServer(server);
  await waitForServerOpen(polly);
  await waitForServerOpen(alice);
  await eventually(async () => (await health(server.url)).members === 3, 'all three are back');
  assert.equal((await health(server.url)).poll_sessions, 2);

  // A newcomer on a WebSocket: polly sees her and chats with her, which
  // needs signaling through the new server.
  const carol = await newPage(browser, server.url);
  await carol.goto(link);
  await join(carol, 'carol');
  await waitForMembers(polly, ['alice', 'carol', 'rusty']);
  await send(carol, 'hello polly');
  await waitForMessage(polly, 'hello polly', 'carol');

  // WebSockets get through again: polly moves to one, and her long-poll
  // session ends.
  blocked = false;
  await eventually(async () => through >= 1, 'polly tries a WebSocket again', 60_000);
  await eventually(async () => (await health(server.url)).poll_sessions === 1, 'polly left /poll', 30_000);
  const dave = await newPage(browser, server.url);
  await dave.goto(link);
  await join(dave, 'dave');
  await waitForMembers(polly, ['alice', 'carol', 'dave', 'rusty']);
  await send(dave, 'over a WebSocket now');
  await waitForMessage(polly, 'over a WebSocket now', 'dave');
  // Only the browser's own reports of requests to a server that was down
  // or killed (a long poll in flight is reset).
  for (const page of [alice, polly, carol, dave]) assert.deepEqual(unexpectedErrors(page), []);
});
