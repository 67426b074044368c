// Browser end-to-end: the conversation as a reader sees it. It follows new
// messages at the end, leaves a reader who scrolled back in place with a
// "↓ N new messages" button, opens where new messages start for a reader
// who comes back, stays bounded under a flood from one member, and tells
// members with look-alike names apart. Real server, real Chromium, a real
// terminal client as the flooding member. Run inside the loopback-only
// network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  enter,
  join,
  launchBrowser,
  newPageIn,
  openRoom,
  screenshot,
  send,
  serverAndBrowser,
  startServer,
  storedCount,
  waitForMembers,
  waitForMessage,
  waitForPage,
} from './lib/harness.mjs';

/**
 * Where the log's view is, once the page has drawn what it has.
 * @param {import('playwright-core').Page} page
 */
async function view(page) {
  return page.evaluate(
    () =>
      new Promise((resolve) =>
        requestAnimationFrame(() =>
          requestAnimationFrame(() => {
            const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
            const box = log.getBoundingClientRect();
            const last = [...log.querySelectorAll('.msg')].at(-1)?.getBoundingClientRect();
            resolve({
              fromEnd: log.scrollHeight - log.scrollTop - log.clientHeight,
              scrollTop: log.scrollTop,
              overflows: log.scrollHeight > log.clientHeight + 100,
              // Its end is in view (a long one may not fit whole).
              lastInView: last !== undefined && last.bottom <= box.bottom + 1 && last.bottom > box.top,
            });
          }),
        ),
      ),
  );
}

/**
 * Waits until the log shows its newest message, at the end.
 * @param {import('playwright-core').Page} page
 */
async function waitAtEnd(page) {
  await waitForPage(page, () => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    return log.scrollHeight - log.scrollTop - log.clientHeight < 2;
  });
  const where = /** @type {any} */ (await view(page));
  assert.ok(where.fromEnd < 2 && where.lastInView, `at the end: ${JSON.stringify(where)}`);
}

const LINES = 'a line of the conversation\nand another one,\nso that it takes some room';

test('the conversation follows new messages; a reader scrolled back gets a button; one who comes back, a divider', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob');
  await waitForMembers(alice, ['bob']);

  // Far more than fits: bob's view keeps the newest at the end.
  for (let i = 1; i <= 24; i += 1) await send(alice, `${i}: ${LINES}`);
  await waitForMessage(bob, `24: ${LINES}`, 'alice');
  assert.ok(/** @type {any} */ (await view(bob)).overflows, 'the log overflows');
  await waitAtEnd(bob);
  await waitAtEnd(alice);

  // Bob scrolls back: new messages do not move him, and a button counts them.
  await bob.getByRole('log').hover();
  await bob.mouse.wheel(0, -600);
  await waitForPage(bob, () => /** @type {HTMLElement} */ (document.querySelector('[role="log"]')).scrollTop < 2000);
  const before = /** @type {any} */ (await view(bob));
  assert.ok(before.fromEnd > 300, `scrolled back: ${JSON.stringify(before)}`);
  for (const i of [25, 26, 27]) await send(alice, `${i}: ${LINES}`);
  await waitForMessage(bob, `27: ${LINES}`, 'alice');
  const jump = bob.getByRole('button', { name: '↓ 3 new messages' });
  await jump.waitFor();
  assert.equal(/** @type {any} */ (await view(bob)).scrollTop, before.scrollTop, 'the view stayed where bob had it');
  await jump.click();
  await waitAtEnd(bob);
  await jump.waitFor({ state: 'hidden' });

  // A newcomer on a phone opens at the newest message too.
  const carol = await enter(browser, server.url, link, 'carol', { width: 390, height: 844 });
  await waitForMessage(carol, `27: ${LINES}`, 'alice');
  await waitAtEnd(carol);
  await screenshot(bob, 'long-conversation-desktop');
  await screenshot(carol, 'long-conversation-phone');

  // Bob closes his tab; alice goes on; bob opens the room again: he is
  // back at once, with a divider where the new messages start, in view.
  const context = bob.context();
  await bob.close();
  for (let i = 28; i <= 40; i += 1) await send(alice, `${i}: ${LINES}`);
  const again = await newPageIn(context);
  await again.goto(link);
  await again.getByRole('log').getByText('You are back as bob').waitFor();
  await waitForMessage(again, `40: ${LINES}`, 'alice');
  const divider = again.getByRole('separator').getByText('New since you left');
  await divider.waitFor();
  const placed = await again.evaluate(() => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    const divider = /** @type {HTMLElement} */ (log.querySelector('.divider'));
    const box = log.getBoundingClientRect();
    const at = divider.getBoundingClientRect();
    /** @param {Element | null} el @param {boolean} forward */
    const text = (el, forward) => {
      while (el && !el.classList.contains('msg')) el = forward ? el.nextElementSibling : el.previousElementSibling;
      return el?.querySelector('.msg-text')?.textContent;
    };
    const next = text(divider.nextElementSibling, true);
    const previous = text(divider.previousElementSibling, false);
    return { inView: at.top >= box.top - 1 && at.bottom <= box.bottom + 1, next, previous };
  });
  assert.deepEqual(placed, { inView: true, next: `28: ${LINES}`, previous: `27: ${LINES}` });
  await screenshot(again, 'new-since-you-left');
  for (const page of [alice, again, carol]) assert.deepEqual(page.errors, [], 'no page errors');
});

test('a flood from one member leaves the page bounded, at the newest message, and the store trimmed', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  /** @type {LineClient | undefined} */
  let flooder;
  t.after(async () => {
    flooder?.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });

  const bob = await openRoom(browser, server.url, 'bob');
  flooder = new LineClient('mallory', BIN, ['chat', bob.url(), '--name', 'mallory', '--plain', '--no-history']);
  await flooder.waitFor((l) => l.startsWith('* joined as mallory'), 'err');
  await waitForMembers(bob, ['mallory']);
  const count = 1300;
  const filler = 'x'.repeat(2000);
  flooder.proc.stdin.write(Array.from({ length: count }, (_, i) => `${i + 1} ${filler}\n`).join(''));
  await waitForMessage(bob, `${count} ${filler}`, 'mallory');

  // The page draws a window of what the history keeps (200 of 1,000),
  // not all of them (older ones come in on scrolling up: scrollback.test.mjs).
  await waitForPage(bob, () => document.querySelectorAll('[role="log"] article').length === 200);
  await waitAtEnd(bob);
  // The store keeps about as many, trimmed as it grew.
  const stored = await storedCount(bob);
  assert.ok(stored <= 1250, `${stored} messages stored`);
  // Each message was acknowledged: mallory leaves with all delivered.
  assert.equal(await flooder.finish(), 0, 'every message delivered');
  assert.deepEqual(bob.errors, [], 'no page errors');
});

test('members are coloured by peer id, and look-alike names get a short id tag', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const bob = await openRoom(browser, server.url, 'bob');
  const link = bob.url();
  const first = await enter(browser, server.url, link, 'alice');
  await waitForMembers(bob, ['alice']);
  await send(first, 'the first alice');
  await waitForMessage(bob, 'the first alice', 'alice');
  await first.getByRole('button', { name: 'Leave the room' }).click();
  await bob.getByRole('log').getByText('alice left').waitFor();
  // Another person, another id, the same name.
  const second = await enter(browser, server.url, link, 'alice');
  await waitForMembers(bob, ['alice']);
  await send(second, 'the second alice');
  await waitForMessage(bob, 'the second alice', 'alice');

  const authors = await bob.evaluate(async () => {
    const { colourOf } = await import('/js/names.js');
    return [...document.querySelectorAll('[role="log"] .msg')].map((m) => {
      const html = /** @type {HTMLElement} */ (m);
      const author = /** @type {HTMLElement} */ (m.querySelector('.msg-author'));
      return {
        id: html.dataset.author ?? '',
        colour: author.dataset.colour,
        want: String(colourOf(html.dataset.author ?? '')),
        tag: m.querySelector('.msg-tag')?.textContent,
      };
    });
  });
  assert.equal(authors.length, 2);
  assert.notEqual(authors[0].id, authors[1].id);
  for (const a of authors) {
    assert.equal(a.colour, a.want, 'coloured by peer id');
    assert.equal(a.tag, `#${a.id.slice(0, 4)}`, 'told apart by a short id');
  }
  // The member list tells the present alice apart too.
  const memberTag = await bob.locator('[aria-label="Members"] .member-tag').allTextContents();
  assert.deepEqual(memberTag.filter(Boolean), [authors[1].tag]);
  for (const page of [bob, second]) assert.deepEqual(page.errors, [], 'no page errors');
});
