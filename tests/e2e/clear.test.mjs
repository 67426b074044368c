// Browser end-to-end: "Clear history on this device" clears everything the
// room keeps on the device: its messages, the private conversations, the
// files received (OPFS) with their progress, and the unread state; the
// confirmation says so; another room's data on the same device stays.
// Real server, real Chromium; run inside the loopback-only network
// namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { enter, join, newPageIn, openRoom, screenshot, send, serverAndBrowser, waitForMembers, waitForMessage, waitForPage } from './lib/harness.mjs';

/**
 * What the page's origin keeps of room `roomId`: IndexedDB records (the
 * room's and its private conversations'), received files (OPFS) and
 * localStorage keys; and every OPFS file name.
 * @param {import('playwright-core').Page} page
 * @param {string} roomId
 */
function kept(page, roomId) {
  return page.evaluate(async (roomId) => {
    const ofRoom = (/** @type {string} */ scope) =>
      scope === roomId || scope.startsWith(`${roomId}/`) || scope.startsWith(`private:${roomId}:`);
    /** @type {IDBDatabase} */
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open('peerchat');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const all = (/** @type {string} */ name) =>
      new Promise((resolve, reject) => {
        const request = db.transaction(name).objectStore(name).getAll();
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    const messages = /** @type {any[]} */ (await all('messages')).filter((m) => ofRoom(m.room));
    const state = /** @type {any[]} */ (await all('state')).filter((s) => ofRoom(s.room));
    db.close();
    /** @type {string[]} */
    const files = [];
    const root = await navigator.storage.getDirectory();
    try {
      const dir = await root.getDirectoryHandle('peerchat-files');
      for await (const name of /** @type {any} */ (dir).keys()) files.push(name);
    } catch {
      // No files received at all.
    }
    const storage = Object.keys(localStorage).filter((k) => k.includes(roomId) && !k.startsWith('peerchat.key.') && !k.startsWith('peerchat.joined.'));
    return {
      messages: messages.map((m) => m.text ?? ''),
      privates: messages.filter((m) => m.room.startsWith('private:')).length,
      state: state.map((s) => ({ recipients: s.recipients.length, acks: s.acks.length, cleared: s.cleared > 0 })),
      files: files.sort(),
      fileRecords: storage.filter((k) => k.startsWith('peerchat.file.')).map((k) => k.slice(k.lastIndexOf('.') + 1)),
      storage: storage.sort(),
    };
  }, roomId);
}

/** Folders made for files to attach, removed when the test ends. */
const folders = /** @type {string[]} */ ([]);

/**
 * Offers a file to the room from `page`.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {number} [size]
 */
async function attach(page, name, size = 40_000) {
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.locator('#room-view').getByRole('button', { name: 'Attach file' }).click(),
  ]);
  // From disk: a large buffer is slow to hand over to the browser.
  const folder = await mkdtemp(path.join(tmpdir(), 'peerchat-clear-'));
  folders.push(folder);
  const file = path.join(folder, name);
  await writeFile(file, Buffer.alloc(size, name.length));
  await chooser.setFiles(file);
}

/**
 * Waits until `page` holds the file `name`, received and checked.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function received(page, name) {
  await page.locator('.file-card').filter({ hasText: name }).getByText('Received and checked').waitFor();
}

/** @param {import('playwright-core').Page} page */
const roomOf = (page) => new URL(page.url()).pathname.split('/').pop() ?? '';

test('clearing a room on this device clears its messages, private conversations, files and unread state, and nothing of other rooms', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  t.after(() => Promise.all(folders.map((f) => rm(f, { recursive: true, force: true }))));

  // Bob's browser is in two rooms; the second keeps a message and a file.
  const alice = await openRoom(browser, server.url, 'alice');
  const bob = await enter(browser, server.url, alice.url(), 'bob');
  const bobOther = await newPageIn(bob.context());
  await bobOther.goto(`${server.url}/`);
  await bobOther.waitForURL(/\/r\//);
  await join(bobOther, 'bob');
  await bobOther.getByRole('log').getByText('You joined as bob').waitFor();
  const aliceOther = await enter(browser, server.url, bobOther.url(), 'alice');
  await waitForMembers(bobOther, ['alice']);
  await send(aliceOther, 'kept in the other room');
  await attach(aliceOther, 'other.bin');
  await received(bobOther, 'other.bin');

  // In the first room: a message, a file, and a private message to bob.
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  await send(alice, 'soon forgotten');
  await attach(alice, 'forgotten.bin');
  await received(bob, 'forgotten.bin');
  await alice.getByRole('button', { name: /^Private message with bob/ }).click();
  const box = alice.getByLabel('Private message to bob', { exact: true });
  await box.fill('a private word');
  await box.press('Enter');
  await bob.getByRole('button', { name: /^Private message with alice.*1 unread$/ }).waitFor();
  await waitForMessage(bob, 'soon forgotten', 'alice');
  // And one still arriving (over 10 MiB: bob accepts it).
  await alice.getByRole('button', { name: '← Room' }).click();
  await attach(alice, 'arriving.bin', 48 * 1024 * 1024);
  await bob.getByRole('button', { name: 'Accept arriving.bin' }).click();
  await waitForPage(bob, () => {
    const bar = [...document.querySelectorAll('.file-card')].find((c) => c.textContent?.includes('arriving.bin'))?.querySelector('.file-bar');
    return Number(bar?.getAttribute('aria-valuenow') ?? 0) > 1024 * 1024;
  });

  const room = roomOf(bob);
  const other = roomOf(bobOther);
  // Writes land a moment after what they keep is shown: poll, a frame at a time.
  let before = await kept(bob, room);
  const deadline = Date.now() + 20_000;
  while (before.privates === 0 || before.fileRecords.length < 2) {
    assert.ok(Date.now() < deadline, `kept: ${JSON.stringify(before)}`);
    await bob.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
    before = await kept(bob, room);
  }
  const otherBefore = await kept(bob, other);
  assert.ok(before.messages.includes('soon forgotten'), 'the room’s history is kept');
  assert.equal(before.fileRecords.length, 2, 'one file received, one arriving');
  for (const fid of before.fileRecords) assert.ok(before.files.includes(fid), 'the received file and the one arriving are in OPFS');
  assert.equal(otherBefore.fileRecords.length, 1);
  assert.ok(otherBefore.files.includes(otherBefore.fileRecords[0]));

  // The confirmation says what goes.
  await bob.getByRole('button', { name: 'Clear history on this device' }).click();
  const dialog = bob.getByRole('dialog', { name: 'Clear this room from this device?' });
  await dialog.waitFor();
  const said = await dialog.locator('li').allTextContents();
  assert.deepEqual(said, [
    'the room’s messages,',
    'your private conversations in this room,',
    'the files received in this room, and those still arriving,',
    'your unread counts and where you had read up to.',
  ]);
  await screenshot(bob, 'clear-dialog');
  await dialog.getByRole('button', { name: 'Clear everything' }).click();
  await bob.getByRole('log').getByText(/^Cleared on this device/).waitFor();
  await screenshot(bob, 'clear-done');

  // Nothing of the room is left but its clear marks; the other room's stays.
  const after = await kept(bob, room);
  assert.deepEqual(after.messages, [], 'no messages of the room');
  assert.equal(after.privates, 0, 'no private messages');
  assert.ok(after.state.every((s) => s.recipients === 0 && s.acks === 0 && s.cleared), `only clear marks: ${JSON.stringify(after.state)}`);
  assert.deepEqual(after.fileRecords, [], 'no file progress');
  for (const fid of before.fileRecords) assert.ok(!after.files.includes(fid), 'the received file and the one arriving are gone from OPFS');
  assert.deepEqual(after.storage, [], 'nothing in localStorage');
  const otherAfter = await kept(bob, other);
  assert.deepEqual({ ...otherAfter, files: [] }, { ...otherBefore, files: [] }, 'the other room’s data stays');
  assert.ok(otherAfter.files.includes(otherBefore.fileRecords[0]), 'the other room’s file stays in OPFS');
  assert.equal(await bob.locator('.member-private .unread').count(), 0, 'nothing unread');
  assert.equal(await bob.locator('#room-view .msg').count(), 0);

  // After a reload, nothing comes back from alice: not the room's, not the
  // private conversation's.
  await bob.reload();
  await bob.getByRole('log').getByText('You are back as bob').waitFor();
  await send(alice, 'after the clear');
  await waitForMessage(bob, 'after the clear', 'alice');
  await alice.getByRole('button', { name: /^Private message with bob/ }).click();
  await box.fill('a second private word');
  await box.press('Enter');
  await bob.getByRole('button', { name: /^Private message with alice.*1 unread$/ }).waitFor();
  assert.deepEqual(await bob.locator('.msg-text').allTextContents(), ['after the clear', 'a second private word']);
  const later = await kept(bob, room);
  assert.ok(!later.messages.includes('soon forgotten') && !later.messages.includes('a private word'), JSON.stringify(later.messages));
  // Nothing of the stopped transfer was written again.
  for (const fid of before.fileRecords) assert.ok(!later.files.includes(fid), 'no file came back to OPFS');
  assert.deepEqual(later.fileRecords, []);
  for (const page of [alice, bob, aliceOther, bobOther]) assert.deepEqual(page.errors, [], 'no page errors');
});
