// Browser end-to-end: a long conversation kept on this device is read back
// by scrolling up. The page draws a bounded window of it; near the top the
// previous page of kept messages comes in above without moving what the
// reader sees; pages far below go and come back on the way down; the real
// start says so; a search result or a message not drawn is still reached.
// Real server, real Chromium, a real terminal client writing the history.
// Run inside the loopback-only network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import { BIN, openRoom, screenshot, serverAndBrowser, waitForMembers, waitForMessage, waitForPage } from './lib/harness.mjs';

/** Most messages the page draws at once (chatlog.js WINDOW). */
const WINDOW = 200;

/**
 * The log as drawn: its first and last messages, how many, the top line,
 * and where a message (by text) sits in the view.
 * @param {import('playwright-core').Page} page
 * @param {string} [watch] a message's text
 */
function drawn(page, watch) {
  return page.evaluate((watch) => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    const texts = [...log.querySelectorAll('.msg .msg-text')].map((el) => el.textContent ?? '');
    const watched = [...log.querySelectorAll('.msg')].find((el) => el.querySelector('.msg-text')?.textContent === watch);
    return {
      count: texts.length,
      first: texts[0],
      last: texts.at(-1),
      edge: log.querySelector('.log-edge')?.textContent ?? null,
      at: watched ? watched.getBoundingClientRect().top - log.getBoundingClientRect().top : null,
      scrollTop: log.scrollTop,
    };
  }, watch);
}

/**
 * Puts the log's view at its top (`'top'`) or end (`'end'`), as a reader
 * dragging the scroll bar would.
 * @param {import('playwright-core').Page} page
 * @param {'top' | 'end'} where
 */
function scrollTo(page, where) {
  return page.evaluate((where) => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    log.dispatchEvent(new WheelEvent('wheel'));
    log.scrollTop = where === 'top' ? 0 : log.scrollHeight;
  }, where);
}

/** @param {number} i */
const text = (i) => `${i} line of a long conversation`;

test('older messages kept on this device come in as the reader scrolls up, the view staying put, the page bounded', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  /** @type {LineClient | undefined} */
  let writer;
  t.after(() => writer?.kill());

  const bob = await openRoom(browser, server.url, 'bob');
  writer = new LineClient('mallory', BIN, ['chat', bob.url(), '--name', 'mallory', '--plain', '--no-history']);
  await writer.waitFor((l) => l.startsWith('* joined as mallory'), 'err');
  await waitForMembers(bob, ['mallory']);
  // More than the device keeps (the history's 1,000): the oldest go.
  const total = 1500;
  writer.proc.stdin.write(Array.from({ length: total }, (_, i) => `${text(i + 1)}\n`).join(''));
  await waitForMessage(bob, text(total), 'mallory');
  const oldest = total - 1000 + 1;

  // The page draws a window of the history (bounded on the next frame).
  await waitForPage(bob, (n) => document.querySelectorAll('[role="log"] .msg').length === n, WINDOW);
  let now = await drawn(bob);
  assert.equal(now.last, text(total));
  assert.equal(now.edge, 'Loading older messages…', 'more is kept above');

  // Up to the start, a page at a time: the message the reader had at the
  // top stays where it was.
  let pages = 0;
  while (now.edge !== 'Beginning of this conversation on this device') {
    const top = /** @type {string} */ (now.first);
    await scrollTo(bob, 'top');
    const before = await drawn(bob, top);
    if (pages === 0) await screenshot(bob, 'scrollback-loading');
    await waitForPage(bob, (top) => document.querySelector('[role="log"] .msg .msg-text')?.textContent !== top, top);
    now = await drawn(bob, top);
    assert.ok(now.count <= WINDOW, `${now.count} messages drawn`);
    assert.ok(now.at !== null && before.at !== null && Math.abs(now.at - before.at) <= 1, `the view stayed: ${before.at} then ${now.at}`);
    pages += 1;
    assert.ok(pages <= 20, 'reached the start');
  }
  assert.equal(now.first, text(oldest), 'the start is the oldest kept message');
  assert.ok(now.last !== text(total), 'the newest are no longer drawn');
  await scrollTo(bob, 'top');
  await screenshot(bob, 'scrollback-beginning');

  // A search result far below: the window moves to it.
  await bob.getByRole('button', { name: 'Search' }).click();
  await bob.getByRole('searchbox', { name: 'Words to find' }).fill(`${total - 3} line`);
  await bob.getByRole('searchbox', { name: 'Words to find' }).press('Enter');
  await bob.getByRole('list', { name: 'Results' }).getByRole('button').first().click();
  await bob.getByRole('dialog', { name: 'Search this device' }).waitFor({ state: 'hidden' });
  assert.equal(await bob.evaluate(() => document.activeElement?.querySelector('.msg-text')?.textContent), text(total - 3));
  assert.ok((await drawn(bob)).count <= WINDOW);

  // Back up to the start, then down again: the pages come back in order.
  for (let i = 0; i < 30 && (await drawn(bob)).edge !== 'Beginning of this conversation on this device'; i += 1) {
    const top = /** @type {string} */ ((await drawn(bob)).first);
    await scrollTo(bob, 'top');
    await waitForPage(bob, (top) => document.querySelector('[role="log"] .msg .msg-text')?.textContent !== top, top);
  }
  assert.equal((await drawn(bob)).first, text(oldest));
  // Far up, a new message is not drawn: a button offers it.
  writer.proc.stdin.write(`${text(total + 1)}\n`);
  const jump = bob.getByRole('button', { name: '↓ 1 new message' });
  await jump.waitFor();
  assert.ok((await drawn(bob)).last !== text(total + 1));
  now = await drawn(bob);
  while (now.last !== text(total + 1)) {
    const last = /** @type {string} */ (now.last);
    await scrollTo(bob, 'end');
    await waitForPage(bob, (last) => [...document.querySelectorAll('[role="log"] .msg .msg-text')].at(-1)?.textContent !== last, last);
    now = await drawn(bob);
    assert.ok(now.count <= WINDOW, `${now.count} messages drawn`);
    const texts = await bob.locator('[role="log"] .msg .msg-text').allTextContents();
    const numbers = texts.map((s) => Number.parseInt(s, 10));
    assert.ok(
      numbers.every((n, i) => i === 0 || n === numbers[i - 1] + 1),
      'drawn in order, none missing',
    );
    pages += 1;
    assert.ok(pages <= 60, 'reached the end');
  }
  await jump.waitFor({ state: 'hidden' });

  // Up a few pages, then the button: straight to the end.
  for (let i = 0; i < 3; i += 1) {
    const top = /** @type {string} */ ((await drawn(bob)).first);
    await scrollTo(bob, 'top');
    await waitForPage(bob, (top) => document.querySelector('[role="log"] .msg .msg-text')?.textContent !== top, top);
  }
  writer.proc.stdin.write(`${text(total + 2)}\n`);
  await jump.waitFor();
  await jump.click();
  await waitForPage(bob, (last) => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    const texts = [...log.querySelectorAll('.msg .msg-text')];
    return texts.at(-1)?.textContent === last && log.scrollHeight - log.scrollTop - log.clientHeight < 2;
  }, text(total + 2));
  assert.ok((await drawn(bob)).count <= WINDOW);
  assert.deepEqual(bob.errors, [], 'no page errors');
});
