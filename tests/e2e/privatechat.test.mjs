// Private conversations in the web client, end to end: three real pages
// in one room; what alice writes privately to bob reaches bob's page only,
// never carol's (its DOM, the data-channel messages her page receives, her
// IndexedDB) nor the history a late joiner gets, and comes back from
// alice's device after a reload.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  enter,
  newPageIn,
  openRoom,
  screenshot,
  send,
  serverAndBrowser,
  waitForDelivery,
  waitForMembers,
  waitForMessage,
  waitForPage,
} from './lib/harness.mjs';

/**
 * Records every text each data channel of the page receives or sends, in
 * `window.channelTexts` (installed before the page's own scripts).
 */
function recordChannels() {
  /** @type {string[]} */
  const texts = [];
  Object.assign(window, { channelTexts: texts });
  const add = RTCDataChannel.prototype.addEventListener;
  RTCDataChannel.prototype.addEventListener = function (type, listener, options) {
    if (type === 'message' && typeof listener === 'function') {
      const inner = listener;
      listener = function (event) {
        if (typeof event.data === 'string') texts.push(event.data);
        return inner.call(this, event);
      };
    }
    return add.call(this, type, listener, options);
  };
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data === 'string') texts.push(data);
    return send.call(this, /** @type {any} */ (data));
  };
}

/**
 * Everything the page's IndexedDB keeps, as one JSON text.
 * @param {import('playwright-core').Page} page
 */
function storedText(page) {
  return page.evaluate(async () => {
    /** @type {IDBDatabase} */
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open('peerchat');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    try {
      const out = [];
      for (const name of db.objectStoreNames) {
        const all = db.transaction(name).objectStore(name).getAll();
        out.push(await new Promise((resolve, reject) => {
          all.onsuccess = () => resolve(all.result);
          all.onerror = () => reject(all.error);
        }));
      }
      return JSON.stringify(out);
    } finally {
      db.close();
    }
  });
}

/**
 * On a phone the member list folds away (the unread count shows on its
 * summary): unfold it.
 * @param {import('playwright-core').Page} page
 */
async function unfoldMembers(page) {
  await page.locator('#members-panel summary').getByText(/1 unread/).waitFor();
  await page.locator('#members-panel summary').click();
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 */
function privateButton(page, nick) {
  return page.getByRole('button', { name: new RegExp(`^Private message with ${nick}`) });
}

test('a private message reaches only its recipient, and stays on the devices of the two', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob', { width: 390, height: 844 });
  const carol = await newPageIn(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await carol.context().grantPermissions(['microphone', 'camera'], { origin: server.url });
  await carol.addInitScript(recordChannels);
  await carol.goto(link);
  await carol.getByLabel('Nickname', { exact: true }).fill('carol');
  await carol.getByRole('button', { name: 'Join' }).click();
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  await waitForMembers(carol, ['alice', 'bob']);

  await send(alice, 'Hello, room.');
  await waitForMessage(carol, 'Hello, room.', 'alice');

  // Alice opens her conversation with bob and writes to him.
  const secret = 'Psst, bob: the cake is in the fridge.';
  await privateButton(alice, 'bob').click();
  await alice.getByRole('heading', { name: 'Private conversation with bob' }).waitFor();
  const box = alice.getByLabel('Private message to bob', { exact: true });
  assert.ok(await box.evaluate((el) => el === document.activeElement), 'the message box has the focus');
  await box.fill(secret);
  await box.press('Enter');

  // Bob sees an unread count on alice's button, not the message in the room.
  await unfoldMembers(bob);
  await privateButton(bob, 'alice').and(bob.getByRole('button', { name: /1 unread$/ })).waitFor();
  assert.equal(
    await bob.locator('#room-view .msg-text', { hasText: secret }).count(),
    0,
    'not in the room’s log',
  );
  await privateButton(bob, 'alice').click();
  await waitForMessage(bob, secret, 'alice');
  await waitForPage(bob, () => !document.querySelector('.member-private .unread'));
  const reply = 'Thanks! Not a word to carol.';
  const bobBox = bob.getByLabel('Private message to alice', { exact: true });
  await bobBox.fill(reply);
  await bobBox.press('Enter');
  await waitForMessage(alice, reply, 'bob');
  await waitForDelivery(alice, secret, 'delivered');
  await waitForDelivery(bob, reply, 'delivered');

  // Back in the room, the room's log and box are there again.
  await alice.getByRole('button', { name: '← Room' }).click();
  await alice.getByLabel('Message', { exact: true }).waitFor();
  await send(alice, 'Room again.');
  await waitForMessage(carol, 'Room again.', 'alice');

  // Carol never had it: not shown, not on her channels, not kept.
  for (const text of [secret, reply]) {
    assert.equal(await carol.getByText(text).count(), 0, 'not in carol’s page');
    const seen = await carol.evaluate(() => /** @type {any} */ (window).channelTexts);
    assert.ok(seen.some((/** @type {string} */ s) => s.includes('Room again.')), 'the recorder sees room messages');
    assert.ok(!seen.some((/** @type {string} */ s) => s.includes(text)), 'not on carol’s data channels');
    assert.ok(!(await storedText(carol)).includes(text), 'not in carol’s IndexedDB');
  }
  assert.equal(await carol.locator('.member-private .unread').count(), 0);

  // A late joiner gets the room's history, and nothing private.
  const dave = await newPageIn(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await dave.context().grantPermissions(['microphone', 'camera'], { origin: server.url });
  await dave.addInitScript(recordChannels);
  await dave.goto(link);
  await dave.getByLabel('Nickname', { exact: true }).fill('dave');
  await dave.getByRole('button', { name: 'Join' }).click();
  await waitForMembers(dave, ['alice', 'bob', 'carol']);
  await waitForMessage(dave, 'Room again.', 'alice');
  await waitForMessage(dave, 'Hello, room.', 'alice');
  for (const text of [secret, reply]) {
    assert.equal(await dave.getByText(text).count(), 0, 'not in dave’s page');
    const seen = await dave.evaluate(() => /** @type {any} */ (window).channelTexts);
    assert.ok(!seen.some((/** @type {string} */ s) => s.includes(text)), 'not in the history dave received');
    assert.ok(!(await storedText(dave)).includes(text), 'not in dave’s IndexedDB');
  }

  // Alice's device keeps the conversation: after a reload it is there.
  await alice.reload();
  await waitForMembers(alice, ['bob', 'carol', 'dave']);
  await privateButton(alice, 'bob').click();
  await waitForMessage(alice, secret, 'You');
  await waitForMessage(alice, reply, 'bob');
  await waitForDelivery(alice, secret, 'delivered');
  // Written while bob's page is away, it arrives when he is back.
  await bob.reload();
  const later = 'Are you back?';
  await alice.getByLabel('Private message to bob', { exact: true }).fill(later);
  await alice.getByLabel('Private message to bob', { exact: true }).press('Enter');
  await unfoldMembers(bob);
  await privateButton(bob, 'alice').and(bob.getByRole('button', { name: /1 unread$/ })).waitFor();
  await privateButton(bob, 'alice').click();
  await waitForMessage(bob, later, 'alice');
  await waitForMessage(bob, secret, 'alice');
  await waitForDelivery(alice, later, 'delivered');

  await screenshot(alice, 'private-desktop-light');
  await alice.emulateMedia({ colorScheme: 'dark' });
  await screenshot(alice, 'private-desktop-dark');
  await screenshot(bob, 'private-phone-light');
  await bob.emulateMedia({ colorScheme: 'dark' });
  await screenshot(bob, 'private-phone-dark');
  await carol.emulateMedia({ colorScheme: 'dark' });
  await screenshot(carol, 'private-members-dark');
});
