// Browser end-to-end: replies, reactions, edits, deletions and the room's
// name, done with the page's own controls (by keyboard) and a terminal
// client's commands, across three pages, a terminal client, a late joiner
// and a reload: every page and the terminal end showing the same thing. Real server, real Chromium; run inside the loopback-only network
// namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';

import {
  BIN,
  enter,
  launchBrowser,
  openRoom,
  screenshot,
  send,
  startServer,
  waitForMembers,
  waitForMessage,
  waitForPage,
} from './lib/harness.mjs';

/**
 * What a page shows of the conversation, comparable between pages: each
 * message's author id, text, whether edited or deleted, the quote of a
 * reply, its reactions; and the room's name in the heading and the title.
 * @param {import('playwright-core').Page} page
 */
function shown(page) {
  return page.evaluate(() => ({
    name: document.getElementById('room-title')?.textContent ?? '',
    title: document.title.replace(/^\(\d+\)\s*/, ''),
    messages: [...document.querySelectorAll('[role="log"] .msg')].map((m) => {
      const el = /** @type {HTMLElement} */ (m);
      return {
        author: el.dataset.author,
        text: el.querySelector('.msg-text')?.textContent,
        edited: el.querySelector('.msg-edited') !== null,
        deleted: el.classList.contains('deleted'),
        quote: el.querySelector('.msg-quote .quote-text')?.textContent ?? null,
        reactions: [...el.querySelectorAll('.msg-reactions .reaction')].map((r) => r.textContent),
      };
    }),
  }));
}

/**
 * Activates a message's control by keyboard: focuses it (which shows the
 * message's actions) and presses Enter.
 * @param {import('playwright-core').Page} page
 * @param {string} text the message's text
 * @param {string} name the control's accessible name
 */
async function act(page, text, name) {
  const msg = page.locator('[role="log"] .msg').filter({ has: page.locator('.msg-text', { hasText: text }) });
  const control = msg.getByRole('button', { name, exact: true });
  await control.focus();
  await control.press('Enter');
}

/**
 * What the terminal client's JSON events say each message shows now, by
 * author id and number, and the room's name.
 * @param {LineClient} client
 */
function terminalState(client) {
  /** @type {Map<string, any>} */
  const messages = new Map();
  let name = null;
  for (const line of client.out) {
    const e = JSON.parse(line);
    if (e.event === 'message') {
      messages.set(`${e.from.id}/${e.seq}`, { text: e.text, edited: false, deleted: false, quote: e.quote?.text ?? null, reactions: [] });
    } else if (e.event === 'changed') {
      const m = messages.get(`${e.author.id}/${e.seq}`);
      if (m) {
        const { text, edited, deleted, reactions } = e.shown;
        Object.assign(m, { text: deleted ? 'Message deleted' : text, edited, deleted, reactions: reactions.map((/** @type {any} */ r) => `${r.emoji} ${r.by.length}`) });
      }
    } else if (e.event === 'room_name') {
      name = e.name;
    }
  }
  return { name, messages: [...messages.values()] };
}

test('replies, reactions, edits, deletions and the room name look the same on every page and in the terminal', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  /** @type {LineClient | undefined} */
  let tess;
  t.after(async () => {
    tess?.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob');
  const carol = await enter(browser, server.url, link, 'carol', { width: 390, height: 844 });
  tess = new LineClient('tess', BIN, ['chat', link, '--name', 'tess', '--json', '--no-history']);
  await waitForMembers(alice, ['bob', 'carol', 'tess']);
  await waitForMembers(bob, ['alice', 'carol', 'tess']);
  await waitForMembers(carol, ['alice', 'bob', 'tess']);

  await send(alice, 'lunch?');
  await waitForMessage(bob, 'lunch?', 'alice');
  await waitForMessage(carol, 'lunch?', 'alice');

  // Bob replies; the quote names what he answers, and jumps to it.
  await act(bob, 'lunch?', 'Reply to alice');
  await bob.getByText('Replying to alice: lunch?').waitFor();
  await send(bob, 'yes, at noon');
  for (const page of [alice, bob, carol]) await waitForMessage(page, 'yes, at noon');
  const quote = alice.locator('.msg-quote').getByRole('button');
  assert.equal(await quote.textContent(), 'In reply to You: lunch?');
  await quote.click();
  await waitForPage(alice, () => document.activeElement?.querySelector('.msg-text')?.textContent === 'lunch?');

  // Reactions from the picker; carol takes hers back with the count button.
  await act(carol, 'lunch?', 'React to alice’s message');
  await carol.getByRole('button', { name: 'React with thumbs up' }).press('Enter');
  await act(bob, 'lunch?', 'React to alice’s message');
  await bob.getByRole('button', { name: 'React with thumbs up' }).press('Enter');
  await act(bob, 'lunch?', 'React to alice’s message');
  await bob.getByRole('button', { name: 'React with party' }).press('Enter');
  const reactions = (/** @type {import('playwright-core').Page} */ page) =>
    waitForPage(page, (want) => {
      const m = [...document.querySelectorAll('[role="log"] .msg')].find((e) => e.querySelector('.msg-text')?.textContent?.startsWith('lunch'));
      const got = [...(m?.querySelectorAll('.reaction') ?? [])].map((r) => r.textContent).join(' ');
      return got === want;
    }, '👍 2 🎉 1');
  for (const page of [alice, bob, carol]) await reactions(page);
  const mine = carol.locator('.reaction', { hasText: '👍' });
  assert.equal(await mine.getAttribute('aria-pressed'), 'true');
  assert.match((await mine.getAttribute('aria-label')) ?? '', /^👍 2: (you, bob|bob, you)/);
  await mine.press('Enter');
  await waitForPage(alice, () => [...document.querySelectorAll('.reaction')].map((r) => r.textContent).join(' ') === '👍 1 🎉 1');
  await screenshot(bob, 'entries-reply-desktop-light');

  // Alice edits her message; bob deletes his reply.
  await act(alice, 'lunch?', 'Edit your message');
  assert.equal(await alice.getByLabel('Message', { exact: true }).inputValue(), 'lunch?');
  await send(alice, 'lunch at one?');
  bob.once('dialog', (dialog) => void dialog.accept());
  await act(bob, 'yes, at noon', 'Delete your message');

  // Carol names the room; the terminal client reacts and replies.
  carol.once('dialog', (dialog) => void dialog.accept('Lunch crew'));
  await carol.getByRole('button', { name: 'Name the room' }).click();
  await tess.waitFor((l) => JSON.parse(l).event === 'room_name');
  tess.say('/edit nothing to edit');
  await tess.waitFor((l) => l.includes('you have no message here to change'), 'err');
  tess.say('/react 😮 @alice');
  tess.say('/reply @alice one is fine');

  /** @param {import('playwright-core').Page} page */
  const settled = (page) =>
    waitForPage(page, () => {
      const texts = [...document.querySelectorAll('[role="log"] .msg')].map((m) => m.textContent ?? '');
      return (
        document.getElementById('room-title')?.textContent === 'Lunch crew' &&
        texts.some((t) => t.includes('lunch at one?') && t.includes('edited') && t.includes('🎉 1') && t.includes('😮 1')) &&
        texts.some((t) => t.includes('one is fine') && t.includes('lunch at one?')) &&
        texts.some((t) => t.includes('Message deleted'))
      );
    });
  for (const page of [alice, bob, carol]) await settled(page);

  // A late joiner gets it all from history; a reload from this device.
  const dave = await enter(browser, server.url, link, 'dave');
  await settled(dave);
  await bob.reload();
  await settled(bob);

  const want = await shown(alice);
  assert.equal(want.name, 'Lunch crew');
  assert.match(want.title, /^Lunch crew · /);
  assert.deepEqual(
    want.messages.map(({ text, edited, deleted, quote, reactions }) => ({ text, edited, deleted, quote, reactions })),
    [
      { text: 'lunch at one?', edited: true, deleted: false, quote: null, reactions: ['👍 1', '🎉 1', '😮 1'] },
      { text: 'Message deleted', edited: false, deleted: true, quote: null, reactions: [] },
      { text: 'one is fine', edited: false, deleted: false, quote: 'lunch at one?', reactions: [] },
    ],
  );
  for (const page of [bob, carol, dave]) assert.deepEqual(await shown(page), want);
  // The terminal shows the same (its reply's quote as it was when sent).
  const terminal = terminalState(tess);
  assert.equal(terminal.name, 'Lunch crew');
  assert.deepEqual(
    terminal.messages.map(({ text, edited, deleted, reactions }) => ({ text, edited, deleted, reactions })),
    want.messages.map(({ text, edited, deleted, reactions }) => ({ text, edited, deleted, reactions })),
  );
  assert.equal(terminal.messages[2].quote, 'lunch at one?');
  assert.ok(
    (await carol.locator('.notice').allTextContents()).includes('You named the room “Lunch crew”.'),
    'the room name is told in the log',
  );

  await screenshot(alice, 'entries-desktop-light');
  await carol.emulateMedia({ colorScheme: 'dark' });
  await screenshot(carol, 'entries-phone-dark');
});
