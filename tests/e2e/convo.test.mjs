// Browser end-to-end: a conversation as people live in it. Messages show
// links, formatting and mentions built as DOM nodes; names complete with
// Tab; a phone's Enter starts a new line; unread messages and mentions are
// counted in the title and notified when asked for; a late joiner's
// history is not read out message by message; the history kept on the
// device is searched and exported. Real server, real Chromium; run inside
// the loopback-only network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';

import {
  BIN,
  WAIT_MS,
  enter,
  launchBrowser,
  newPageIn,
  openRoom,
  send,
  serverAndBrowser,
  startServer,
  waitForMembers,
  waitForMessage,
  waitForPage,
  waitForStored,
} from './lib/harness.mjs';

/**
 * Records, for each message added to the log, whether the log was marked
 * busy (not read out) just after.
 * @param {import('playwright-core').BrowserContext} context
 */
async function recordAnnouncements(context) {
  await context.addInitScript(() => {
    /** @type {{text: string, busy: boolean}[]} */
    const added = [];
    Object.assign(window, { added });
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) {
          if (!(n instanceof HTMLElement) || !n.classList.contains('msg')) continue;
          const text = n.querySelector('.msg-text')?.textContent ?? '';
          setTimeout(() => added.push({ text, busy: document.getElementById('log')?.getAttribute('aria-busy') === 'true' }));
        }
      }
    }).observe(document, { subtree: true, childList: true });
  });
}

test('messages show links, formatting and mentions; names complete; a phone writes lines; the title counts', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  // Bob is on a phone: a touch screen, no mouse.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
  await phone.grantPermissions(['microphone', 'camera'], { origin: server.url });
  const bob = await newPageIn(phone);
  await bob.goto(link);
  await bob.getByLabel('Nickname', { exact: true }).fill('bob');
  await bob.getByRole('button', { name: 'Join' }).click();
  await bob.getByRole('log').getByText('You joined as bob').waitFor();
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);

  // Tab completes a name; Enter on the phone starts a line; Send sends.
  const box = bob.getByLabel('Message', { exact: true });
  await box.fill('hi @AL');
  await bob.getByRole('option', { name: '@alice' }).waitFor();
  assert.equal(await box.getAttribute('aria-activedescendant'), 'mention-option-0');
  await box.press('Tab');
  assert.equal(await box.inputValue(), 'hi @alice ');
  await box.press('End');
  await box.pressSequentially('*look*: https://example.com/a_b_(c). and `x <b>y</b>`');
  await box.press('Enter');
  await box.pressSequentially('_next line_ \\*plain\\* javascript:alert(1)');
  assert.match(await box.inputValue(), /\n_next line_/, 'Enter started a new line');
  await bob.getByRole('button', { name: 'Send' }).click();

  const shown = 'hi @alice look: https://example.com/a_b_(c). and x <b>y</b>\nnext line *plain* javascript:alert(1)';
  await waitForMessage(alice, shown, 'bob');
  const msg = alice.locator('[role="log"] article.msg', { hasText: 'next line' });
  assert.ok(await msg.evaluate((el) => el.classList.contains('mentions-me')), 'marked as mentioning alice');
  assert.equal(await msg.locator('.mention.self').textContent(), '@alice');
  assert.equal(await msg.locator('strong').textContent(), 'look');
  assert.equal(await msg.locator('em').textContent(), 'next line');
  assert.equal(await msg.locator('code').textContent(), 'x <b>y</b>');
  assert.equal(await msg.locator('.msg-text').getAttribute('dir'), 'auto');
  const links = await msg.locator('a').evaluateAll((as) =>
    as.map((a) => ({ href: a.getAttribute('href'), target: a.getAttribute('target'), rel: a.getAttribute('rel'), text: a.textContent })),
  );
  assert.deepEqual(links, [
    { href: 'https://example.com/a_b_(c)', target: '_blank', rel: 'noopener noreferrer', text: 'https://example.com/a_b_(c)' },
  ]);
  assert.equal(await msg.locator('b, script, img').count(), 0, 'no markup from the text');

  // Alice looks elsewhere: what arrives is counted in her title, mentions
  // apart, until she is back.
  await alice.evaluate(() => {
    document.hasFocus = () => false;
  });
  // On a phone, the Send button sends.
  for (const text of ['one more', 'and @alice again']) {
    await box.fill(text);
    await bob.getByRole('button', { name: 'Send' }).click();
  }
  await waitForMessage(alice, 'and @alice again');
  await waitForPage(alice, () => document.title === '(2 · @1) peerchat');
  await alice.evaluate(() => {
    document.hasFocus = () => true;
    dispatchEvent(new Event('focus'));
  });
  await waitForPage(alice, () => document.title === 'peerchat');
  for (const page of [alice, bob]) assert.deepEqual(/** @type {any} */ (page).errors, [], 'no page errors');
});

test('notifications, when chosen, tell of messages and mentions while the tab is away', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const alice = await openRoom(browser, server.url, 'alice');
  // What the page said, to tell why if no notification shows.
  /** @type {string[]} */
  const said = [];
  alice.on('console', (m) => said.push(`${m.type()}: ${m.text()}`));
  await alice.context().grantPermissions(['notifications'], { origin: server.url });
  // The service worker shows them (as phones require).
  await waitForPage(alice, () => navigator.serviceWorker.controller !== null);
  const bob = await enter(browser, server.url, alice.url(), 'bob');
  await waitForMembers(alice, ['bob']);

  await alice.getByRole('button', { name: 'Notifications: off' }).click();
  await alice.getByRole('radio', { name: 'When someone mentions me' }).check();
  await alice.getByRole('button', { name: 'Done' }).click();
  assert.equal(await alice.getByRole('button', { name: 'Notifications: mentions' }).count(), 1);

  await alice.evaluate(() => {
    document.hasFocus = () => false;
  });
  await send(bob, 'not for alice');
  await send(bob, 'ping @alice');
  await waitForMessage(alice, 'ping @alice');
  // Shown by the worker: asked of its registration, a frame at a time.
  const notifications = () =>
    alice.evaluate(async () => {
      await new Promise((resolve) => requestAnimationFrame(resolve));
      const registration = await navigator.serviceWorker.getRegistration();
      return ((await registration?.getNotifications()) ?? []).map((n) => ({
        title: n.title,
        body: n.body,
        requireInteraction: n.requireInteraction,
      }));
    });
  /** @param {(list: Array<{title: string, body: string}>) => boolean} done */
  const pollNotifications = async (done) => {
    const deadline = Date.now() + WAIT_MS;
    let shown = await notifications();
    while (!done(shown) && Date.now() < deadline) shown = await notifications();
    return shown;
  };
  // It stays until alice is back: the browser would take it away after
  // some seconds (25 here), which a loaded machine's test could miss.
  const shown = await pollNotifications((list) => list.length > 0);
  const state = () =>
    alice.evaluate(async () => ({
      permission: Notification.permission,
      active: Boolean((await navigator.serviceWorker.getRegistration())?.active),
      title: document.title,
    }));
  assert.deepEqual(shown, [{ title: 'bob mentioned you', body: 'ping @alice', requireInteraction: true }], shown.length === 0 ? `no notification: ${JSON.stringify(await state())}; the page said:\n${said.join('\n')}` : undefined);
  // Back on the tab: the page takes it away.
  await alice.evaluate(() => {
    document.hasFocus = () => true;
    dispatchEvent(new Event('focus'));
  });
  assert.deepEqual(await pollNotifications((list) => list.length === 0), []);
  // Remembered on this device.
  assert.equal(await alice.evaluate(() => localStorage.getItem('peerchat.alerts')), 'mentions');
  assert.deepEqual(/** @type {any} */ (alice).errors, []);
});

test('a late joiner’s history lands quietly; the history on the device is searched and exported, in the page and the terminal alike', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  /** @type {LineClient | undefined} */
  let dora;
  t.after(async () => {
    dora?.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const texts = ['deploy started', 'tests are green', 'Deploy finished: https://ci.example/7', 'lunch?', 'café at noon', 'ok'];
  for (const text of texts) await send(alice, text);
  await waitForStored(alice, texts.length);

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(['microphone', 'camera'], { origin: server.url });
  await recordAnnouncements(context);
  const bob = await newPageIn(context);
  await bob.goto(link);
  await bob.getByLabel('Nickname', { exact: true }).fill('bob');
  await bob.getByRole('button', { name: 'Join' }).click();
  await waitForMessage(bob, 'ok', 'alice');
  // The history came in while the log was busy, and one sentence sums it up.
  await bob.getByRole('log').getByText('6 messages added to the conversation.').waitFor({ state: 'attached' });
  await send(alice, 'welcome bob');
  await waitForMessage(bob, 'welcome bob', 'alice');
  const added = await waitForPage(bob, () => {
    const list = /** @type {any} */ (window).added;
    return list.length === 7 ? list : null;
  });
  assert.deepEqual(
    added.map((/** @type {any} */ a) => a.busy),
    [true, true, true, true, true, true, false],
    JSON.stringify(added),
  );

  // Search: every word, any case and accent, newest first; a result takes
  // the reader to the message.
  await waitForStored(bob, 7);
  await bob.getByRole('button', { name: 'Search' }).click();
  await bob.getByRole('searchbox', { name: 'Words to find' }).fill('DEPLOY');
  await bob.getByRole('searchbox', { name: 'Words to find' }).press('Enter');
  await bob.getByRole('status').getByText('2 messages of 7 on this device, newest first.').waitFor();
  const results = bob.getByRole('list', { name: 'Results' }).getByRole('button');
  const found = await results.allTextContents();
  assert.equal(found.length, 2);
  assert.ok(found[0].startsWith('alice · ') && found[0].endsWith('Deploy finished: https://ci.example/7'), found[0]);
  assert.ok(found[1].endsWith('deploy started'), found[1]);
  await bob.getByRole('searchbox', { name: 'Words to find' }).fill('cafe');
  await bob.getByRole('searchbox', { name: 'Words to find' }).press('Enter');
  await results.first().click();
  await bob.getByRole('dialog', { name: 'Search this device' }).waitFor({ state: 'hidden' });
  assert.equal(await bob.evaluate(() => document.activeElement?.querySelector('.msg-text')?.textContent), 'café at noon');

  // Export: plain text and JSON downloads of the same history.
  await bob.getByRole('button', { name: 'Export' }).click();
  await bob.getByText('(7 messages)').waitFor();
  const [textFile] = await Promise.all([bob.waitForEvent('download'), bob.getByRole('button', { name: 'Plain text' }).click()]);
  assert.match(textFile.suggestedFilename(), /^peerchat-[A-Za-z0-9_-]{22}-\d{8}-\d{4}\.txt$/);
  const text = await readFile(/** @type {string} */ (await textFile.path()), 'utf8');
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /^peerchat room [A-Za-z0-9_-]{22}: 7 messages$/);
  assert.match(lines[1], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d alice: deploy started$/);
  assert.match(lines[7], / alice: welcome bob$/);
  await bob.getByRole('button', { name: 'Export' }).click();
  const [jsonFile] = await Promise.all([bob.waitForEvent('download'), bob.getByRole('button', { name: 'JSON' }).click()]);
  const json = JSON.parse(await readFile(/** @type {string} */ (await jsonFile.path()), 'utf8'));
  assert.equal(json.room, new URL(link).pathname.split('/').pop());
  assert.deepEqual(json.messages.map((/** @type {any} */ m) => m.text), [...texts, 'welcome bob']);
  assert.ok(json.messages.every((/** @type {any} */ m) => m.nick === 'alice' && m.author.length > 0 && m.time.endsWith('Z')));

  // The terminal client holds the same history: /search finds the same,
  // /export writes the same messages, /qr draws the link.
  dora = new LineClient('dora', BIN, ['chat', link, '--name', 'dora', '--plain', '--no-history']);
  await dora.waitFor((l) => l === 'alice: welcome bob');
  dora.say('/search DEPLOY');
  await dora.waitFor((l) => l === '* 2 messages hold “DEPLOY”, newest first:', 'err');
  await dora.waitFor((l) => / alice: deploy started$/.test(l), 'err');
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'peerchat-export-')), 'room.json');
  dora.say(`/export ${file}`);
  await dora.waitFor((l) => l === `* exported 7 message(s) to ${file}`, 'err');
  const terminal = JSON.parse(await readFile(file, 'utf8'));
  const same = (/** @type {any} */ m) => ({ id: m.id, author: m.author, nick: m.nick, seq: m.seq, clock: m.clock, ts: m.ts, time: m.time, text: m.text });
  assert.deepEqual(terminal.messages.map(same), json.messages.map(same));
  dora.say('/qr');
  await dora.waitFor((l) => l === `* the room link, ${link}:`, 'err');
  await dora.waitFor((l) => /^█{20,}$/.test(l), 'err');
  for (const page of [alice, bob]) assert.deepEqual(/** @type {any} */ (page).errors, [], 'no page errors');
});
