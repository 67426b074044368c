// Browser end-to-end: what a reader has not read yet outlives a reload.
// Private conversations keep their unread counts and open at a "New since
// you left" divider; the room, left for a private conversation, counts
// what arrives on "← Room", and after a reload opens at the divider above
// the first message the reader never saw. Real server, real Chromium; run
// inside the loopback-only network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { enter, openRoom, screenshot, send, serverAndBrowser, waitForMembers, waitForMessage, waitForPage } from './lib/harness.mjs';

/**
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 */
function privateButton(page, nick) {
  return page.getByRole('button', { name: new RegExp(`^Private message with ${nick}`) });
}

/**
 * Writes `texts` to `nick` privately, from the conversation with them.
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 * @param {string[]} texts
 */
async function sendPrivately(page, nick, texts) {
  if (!(await page.getByRole('heading', { name: `Private conversation with ${nick}` }).isVisible())) {
    await privateButton(page, nick).click();
  }
  const box = page.getByLabel(`Private message to ${nick}`, { exact: true });
  for (const text of texts) {
    await box.fill(text);
    await box.press('Enter');
    await page.locator('#private-view .msg.own .msg-text', { hasText: text }).waitFor();
  }
}

/**
 * Reloads `page` and waits until it is back in the room with its private
 * conversations restored (the newest entry `newest` kept in one).
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 * @param {string} newest
 */
async function reload(page, nick, newest) {
  await page.reload();
  await page.getByRole('log').getByText(`You are back as ${nick}`).waitFor();
  await page.locator('#private-logs .msg-text', { hasText: newest }).waitFor({ state: 'attached' });
}

/**
 * What is on either side of the open log's "New since you left" divider,
 * and whether it is in view.
 * @param {import('playwright-core').Page} page
 * @param {string} selector the log
 */
function divider(page, selector) {
  return page.evaluate((selector) => {
    const log = /** @type {HTMLElement} */ (document.querySelector(selector));
    const divider = log.querySelector('.divider');
    if (!divider) return null;
    const box = log.getBoundingClientRect();
    const at = divider.getBoundingClientRect();
    /** @param {Element | null} el @param {boolean} forward */
    const text = (el, forward) => {
      while (el && !el.classList.contains('msg')) el = forward ? el.nextElementSibling : el.previousElementSibling;
      return el?.querySelector('.msg-text')?.textContent;
    };
    return {
      inView: at.top >= box.top - 1 && at.bottom <= box.bottom + 1,
      previous: text(divider.previousElementSibling, false),
      next: text(divider.nextElementSibling, true),
    };
  }, selector);
}

test('unread counts and the "New since you left" divider outlive a reload, in private conversations and the room', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const alice = await openRoom(browser, server.url, 'alice');
  const bob = await enter(browser, server.url, alice.url(), 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);

  // Bob reads alice's first private message, and stays in the conversation.
  await send(alice, 'r0 before');
  await waitForMessage(bob, 'r0 before', 'alice');
  await sendPrivately(alice, 'bob', ['p1 first']);
  await privateButton(bob, 'alice').click();
  await waitForMessage(bob, 'p1 first', 'alice');

  // Meanwhile the room goes on: "← Room" counts it.
  await alice.getByRole('button', { name: '← Room' }).click();
  await send(alice, 'r1 unseen');
  await send(alice, 'r2 unseen');
  await bob.getByRole('button', { name: '← Room 2 unread' }).waitFor();
  await screenshot(bob, 'unread-room-from-private');

  // A reload: the room opens at the divider above what bob never saw.
  await reload(bob, 'bob', 'p1 first');
  await bob.locator('#room-view .divider').waitFor();
  assert.deepEqual(await divider(bob, '#log'), { inView: true, previous: 'r0 before', next: 'r1 unseen' });

  // Alice writes privately while bob is in the room: three unread.
  await sendPrivately(alice, 'bob', ['p2 new', 'p3 new', 'p4 new']);
  await privateButton(bob, 'alice').and(bob.getByRole('button', { name: /3 unread$/ })).waitFor();

  // Still three after a reload; the conversation opens at its divider.
  await reload(bob, 'bob', 'p4 new');
  await privateButton(bob, 'alice').and(bob.getByRole('button', { name: /3 unread$/ })).waitFor();
  await screenshot(bob, 'unread-after-reload');
  await privateButton(bob, 'alice').click();
  await bob.getByRole('heading', { name: 'Private conversation with alice' }).waitFor();
  await waitForPage(bob, () => !document.querySelector('.member-private .unread'));
  const pane = '#private-logs .private-pane:not([hidden]) .log';
  await waitForPage(bob, (pane) => document.querySelector(`${pane} .divider`), pane);
  assert.deepEqual(await divider(bob, pane), { inView: true, previous: 'p1 first', next: 'p2 new' });
  await screenshot(bob, 'unread-private-divider');

  // Read: nothing unread after another reload.
  await bob.getByRole('button', { name: '← Room' }).click();
  await reload(bob, 'bob', 'p4 new');
  await bob.locator('#room-view .msg-text', { hasText: 'r2 unseen' }).waitFor();
  assert.equal(await bob.locator('.member-private .unread').count(), 0, 'nothing unread');
  for (const page of [alice, bob]) assert.deepEqual(page.errors, [], 'no page errors');
});
