// Protocol version 2 end to end, in real browsers and terminal clients: the
// room secret stays in the link's fragment, signals are sealed on the wire.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { launchBrowser, newPage, startServer } from './lib/harness.mjs';

test('a room link without its secret cannot join, and the page says what to do', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop('SIGKILL');
  });
  const page = await newPage(browser, server.url);
  let sockets = 0;
  page.on('websocket', () => (sockets += 1));
  await page.goto(`${server.url}/r/abcdefghijklmnopqrstuv`);
  await page.getByRole('heading', { name: 'This room link is incomplete' }).waitFor();
  assert.match(await page.locator('#bad-room-view').textContent() ?? '', /including the part after #/);
  await page.goto(`${server.url}/r/abcdefghijklmnopqrstuv#damaged`);
  await page.getByRole('heading', { name: 'This room link is damaged' }).waitFor();
  assert.equal(await page.getByLabel('Nickname', { exact: true }).isVisible(), false);
  assert.equal(sockets, 0, 'the page did not even connect');
});
