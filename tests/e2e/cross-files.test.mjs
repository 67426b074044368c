// Files and private messages between the two clients: a real page and
// real `peerchat chat` processes in line mode (--json) in one room. Files
// of 0 bytes, 16 KiB + 1 and a few MiB, with names that try to escape the
// download directory or disguise their extension, go page→terminal and
// terminal→page; the bytes each side saves (the terminal's download
// directory and its file_saved event; the page's Save download) have the
// sent file's SHA-256. A private message goes page→terminal and
// terminal→page, and the third member, a terminal, never sees it. Run
// inside the loopback-only network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { json, LineClient, terminalClients } from './lib/cli.mjs';
import { bytesOf, drop, PNG, save, sha256 } from './lib/files.mjs';
import {
  enter,
  launchBrowser,
  openRoom,
  startServer,
  waitForDelivery,
  waitForMembers,
  waitForMessage,
  waitForPage,
} from './lib/harness.mjs';

/**
 * A server, a browser and a scratch directory, all gone after the test;
 * `terminal` starts a `peerchat chat --json` in the room of `link`.
 * @param {import('node:test').TestContext} t
 */
async function setUp(t) {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop('SIGKILL');
  });
  const { dir, client } = terminalClients(t, 'peerchat-cross-');
  /**
   * @param {string} link
   * @param {string} name
   * @param {string[]} [extra]
   */
  const terminal = (link, name, extra = []) => client(name, [link, '--json', ...extra]);
  return { server, browser, dir, terminal };
}

test('a page and terminals exchange files both ways, intact, and private messages reach only their member', async (t) => {
  const { server, browser, dir, terminal } = await setUp(t);
  const alice = await openRoom(browser, server.url, 'alice');
  const bob = terminal(alice.url(), 'bob', ['--no-history']);
  const carol = terminal(alice.url(), 'carol', ['--no-history']);
  await waitForMembers(alice, ['bob', 'carol']);

  // Page → terminals: every file arrives at bob under a plain name, with
  // the sent file's hash in the event and on disk.
  const fromPage = [
    { name: 'empty file.txt', size: 0, seed: 1, plain: 'empty file.txt' },
    { name: '../../etc/passwd', size: 16385, seed: 2, plain: 'passwd' },
    { name: 'invoice\u202Egpj.exe', size: 3 * 1024 * 1024, seed: 3, plain: 'invoicegpj.exe' },
  ];
  await drop(alice, '#room-view', fromPage);
  for (const f of fromPage) {
    const want = sha256(bytesOf(f.size, f.seed));
    await bob.waitFor((l) => json(l)?.event === 'file_saved' && json(l).name === f.plain);
    const saved = bob.out.map(json).find((e) => e?.event === 'file_saved' && e.name === f.plain);
    assert.equal(saved.path, path.join(dir, 'bob downloads', f.plain), `${f.plain}: saved in the download directory`);
    assert.equal(saved.sha256, want, `${f.plain}: the event's SHA-256 is the sent file's`);
    assert.equal(sha256(readFileSync(saved.path)), want, `${f.plain}: the saved bytes are the sent file's`);
  }

  // Terminal → page.
  const fromTerminal = [
    { name: 'nothing.txt', size: 0, seed: 4, plain: 'nothing.txt' },
    { name: 'odd size.bin', size: 16385, seed: 5, plain: 'odd size.bin' },
    { name: 'photo\u202Egnp.exe', size: 3 * 1024 * 1024, seed: 6, plain: 'photognp.exe' },
  ];
  for (const f of fromTerminal) {
    const file = path.join(dir, f.name);
    writeFileSync(file, bytesOf(f.size, f.seed));
    bob.say(`/send ${file}`);
  }
  for (const f of fromTerminal) {
    const want = sha256(bytesOf(f.size, f.seed));
    const saved = await save(alice, f.plain);
    assert.equal(saved.name, f.plain, 'saved under its plain name');
    assert.equal(saved.bytes.length, f.size, f.plain);
    assert.equal(sha256(saved.bytes), want, `${f.plain}: the SHA-256 of the bytes saved is the sent file's`);
  }

  // Private: page → bob, bob → page; carol sees neither.
  const secret = 'Psst, bob: only you.';
  const reply = 'Got it, alice; not a word.';
  await alice.getByRole('button', { name: /^Private message with bob/ }).click();
  const box = alice.getByLabel('Private message to bob', { exact: true });
  await box.fill(secret);
  await box.press('Enter');
  await bob.waitFor((l) => json(l)?.event === 'private_message' && json(l).message.text === secret);
  const got = bob.out.map(json).find((e) => e?.event === 'private_message' && e.message.text === secret);
  assert.equal(got.with.nick, 'alice');
  assert.equal(got.message.own, false);
  await waitForDelivery(alice, secret, 'delivered');
  bob.say(`/msg alice ${reply}`);
  await waitForMessage(alice, reply, 'bob');
  await bob.waitFor((l) => json(l)?.event === 'private_delivery' && json(l).with.nick === 'alice');

  // A room message after both: once carol has it, she would have had them.
  bob.say('back in the room');
  await carol.waitFor((l) => json(l)?.event === 'message' && json(l).text === 'back in the room');
  await alice.getByRole('button', { name: '← Room' }).click();
  await waitForMessage(alice, 'back in the room', 'bob');
  for (const line of carol.out) {
    assert.ok(!line.includes(secret) && !line.includes(reply), `carol saw: ${line}`);
    assert.notEqual(json(line)?.event, 'private_message');
  }
  assert.equal(await alice.locator('#room-view .msg-text', { hasText: secret }).count(), 0, 'not in the room’s log');
  for (const c of [bob, carol]) assert.equal(await c.finish(), 0, `${c.name} exits cleanly`);
});

/**
 * The JSON events of a terminal so far.
 * @param {LineClient} c
 * @param {string} event
 */
const events = (c, event) => c.out.map(json).filter((e) => e?.event === event);

test('private files, files over the limit waiting to be accepted, and an image, between a page and a terminal', async (t) => {
  const { server, browser, dir, terminal } = await setUp(t);
  const alice = await openRoom(browser, server.url, 'alice');
  const bob = terminal(alice.url(), 'bob', ['--no-history', '--accept-files', '1000']);
  const carol = terminal(alice.url(), 'carol', ['--no-history']);
  await waitForMembers(alice, ['bob', 'carol']);

  // Page → bob privately, over bob's limit: it waits for /accept.
  await alice.getByRole('button', { name: /^Private message with bob/ }).click();
  await drop(alice, '#private-view', [{ name: 'just for bob ✓.txt', base64: Buffer.alloc(5000, 7).toString('base64') }]);
  await bob.waitFor((l) => json(l)?.event === 'file_offered');
  const [offer] = events(bob, 'file_offered');
  assert.equal(offer.waiting, true, 'over --accept-files, it waits');
  assert.equal(offer.file.private.nick, 'alice', 'offered privately');
  bob.say('/accept');
  await bob.waitFor((l) => json(l)?.event === 'file_saved');
  assert.equal(events(bob, 'file_saved')[0].sha256, sha256(Buffer.alloc(5000, 7)));

  // Bob → page: a PNG privately, shown as an image; 11 MiB to the room,
  // which the page accepts.
  writeFileSync(path.join(dir, 'dot.png'), PNG);
  bob.say(`/send alice ${path.join(dir, 'dot.png')}`);
  const big = bytesOf(11 * 1024 * 1024, 9);
  writeFileSync(path.join(dir, 'big.iso'), big);
  bob.say(`/send ${path.join(dir, 'big.iso')}`);
  await alice.locator('#private-view .file-card img.file-image').waitFor();
  await alice.getByRole('button', { name: '← Room' }).click();
  await alice.getByRole('button', { name: 'Accept big.iso' }).click();
  assert.equal(sha256((await save(alice, 'big.iso')).bytes), sha256(big));

  // Carol was offered big.iso (waiting: over 10 MiB) and nothing private.
  await carol.waitFor((l) => json(l)?.event === 'file_offered');
  assert.deepEqual(
    events(carol, 'file_offered').map((e) => e.file.name),
    ['big.iso'],
  );
});

test('late joiners fetch from the other client, and a corrupted piece from a terminal is fetched again', async (t) => {
  const { server, browser, dir, terminal } = await setUp(t);
  const alice = await openRoom(browser, server.url, 'alice');
  const url = new URL(alice.url());
  const link = `${url.origin}${url.pathname}?testhooks#${url.hash.slice(1)}`;
  const bob = terminal(link, 'bob');
  await waitForMembers(alice, ['bob']);
  await drop(alice, '#room-view', [{ name: 'early.bin', size: 100_000, seed: 3 }]);
  await bob.waitFor((l) => json(l)?.event === 'file_saved');

  // Alice goes; dave, a page, fetches her file from bob.
  await alice.getByRole('button', { name: 'Leave the room' }).click();
  const dave = await enter(browser, server.url, link, 'dave');
  await waitForMembers(dave, ['bob']);
  assert.equal(sha256((await save(dave, 'early.bin')).bytes), sha256(bytesOf(100_000, 3)));

  // A piece bob sends is corrupted on the way: dave fetches it again.
  await dave.evaluate(() => {
    /** @type {any} */ (window).peerchatFiles.corruptNext = true;
  });
  const warned = dave.waitForEvent('console', { predicate: (m) => /did not match its hash/.test(m.text()) });
  writeFileSync(path.join(dir, 'fresh.bin'), bytesOf(700_000, 5));
  bob.say(`/send ${path.join(dir, 'fresh.bin')}`);
  await warned;
  assert.equal(sha256((await save(dave, 'fresh.bin')).bytes), sha256(bytesOf(700_000, 5)));

  // Bob goes; erin, a terminal, fetches it from dave.
  assert.equal(await bob.finish(), 0);
  await waitForMembers(dave, []);
  const erin = terminal(link, 'erin');
  await erin.waitFor((l) => events(erin, 'file_saved').length === 2);
  for (const [name, size, seed] of /** @type {const} */ ([['early.bin', 100_000, 3], ['fresh.bin', 700_000, 5]])) {
    const saved = events(erin, 'file_saved').find((e) => e.name === name);
    assert.equal(sha256(readFileSync(saved.path)), sha256(bytesOf(size, seed)), name);
  }
});

test('a page receiving from a terminal resumes after a reload, and a page that cancels its offer tells the terminal', async (t) => {
  const { server, browser, dir, terminal } = await setUp(t);
  const alice = await openRoom(browser, server.url, 'alice');
  const bob = terminal(alice.url(), 'bob');
  await waitForMembers(alice, ['bob']);

  // Terminal → page, the page reloaded mid-transfer; a private message
  // written meanwhile arrives once it is back.
  const size = 24 * 1024 * 1024;
  writeFileSync(path.join(dir, 'long.bin'), bytesOf(size, 10));
  bob.say(`/send ${path.join(dir, 'long.bin')}`);
  await alice.getByRole('button', { name: 'Accept long.bin' }).click();
  await waitForPage(alice, () => Number(document.querySelector('.file-card .file-bar')?.getAttribute('aria-valuenow') ?? 0) > 4 * 1024 * 1024);
  await alice.reload();
  bob.say('/msg alice while you were away');
  const resumedAt = await waitForPage(alice, () => {
    const now = Number(document.querySelector('.file-card .file-bar')?.getAttribute('aria-valuenow') ?? 0);
    return now > 0 ? now : null;
  });
  assert.ok(Number(resumedAt) >= 2 * 1024 * 1024, `resumed from what was kept (${resumedAt} bytes)`);
  // The debug build of the terminal sends at 1–3 MiB/s on a busy machine.
  assert.equal(sha256((await save(alice, 'long.bin', 90_000)).bytes), sha256(bytesOf(size, 10)));
  await alice.getByRole('button', { name: /^Private message with bob.*1 unread/ }).click();
  await waitForMessage(alice, 'while you were away', 'bob');
  await alice.getByRole('button', { name: '← Room' }).click();

  // Page → terminal, cancelled by the page mid-transfer: its `cancel`
  // reaches bob (it is sent just before the channel closes), who tells
  // the transfer cancelled by its author, not stalled. On a busy machine
  // the whole file can arrive before the click does: then another file
  // is offered and cancelled (the test is of a cancel in flight).
  for (let attempt = 1; ; attempt += 1) {
    const name = `cancel me ${attempt}.bin`;
    await drop(alice, '#room-view', [{ name, size: 30 * 1024 * 1024, seed: 4 + attempt }]);
    await bob.waitFor((l) => json(l)?.event === 'file_offered' && json(l).file.name === name);
    bob.say('/accept');
    await bob.waitFor((l) => json(l)?.event === 'file_progress' && json(l).name === name && json(l).bytes > 2 * 1024 * 1024);
    await alice.getByRole('button', { name: `Cancel ${name}` }).click();
    const ended = (/** @type {string} */ l) => ['file_failed', 'file_saved'].includes(json(l)?.event) && json(l).name === name;
    await bob.waitFor(ended);
    const end = json(/** @type {string} */ (bob.out.find(ended)));
    if (end.event === 'file_saved' && attempt < 3) continue;
    assert.equal(end.event, 'file_failed', 'the cancel came in time once in three tries');
    assert.equal(end.reason, 'cancelled by its author');
    break;
  }
});
