// Files between real pages, end to end: offered by dropping them on the
// conversation (and through the Attach button), fetched on data channels
// of their own, written to the Origin Private File System, saved through
// the Save button; the saved bytes' SHA-256 is the sent file's. Plain
// names, image previews by content, a corrupted piece fetched again, a
// large file waiting to be accepted, a private file, a reload of the
// receiving page mid-transfer, a late joiner fetching from a member other
// than the author, and the network cut mid-transfer (the loopback of the
// test namespace taken down, as in flap.test.mjs).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import { bytesOf, card, drop, PNG, save, sha256 } from './lib/files.mjs';
import {
  enter,
  launchBrowser,
  openRoom,
  screenshot,
  serverAndBrowser,
  startServer,
  waitForMembers,
  waitForPage,
} from './lib/harness.mjs';

test('files of every awkward size and name arrive intact, by drop and by the Attach button', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const alice = await openRoom(browser, server.url, 'alice');
  const url = new URL(alice.url());
  const link = `${url.origin}${url.pathname}?testhooks#${url.hash.slice(1)}`;
  const bob = await enter(browser, server.url, link, 'bob');
  /** @type {string[]} */
  const noWasm = [];
  bob.on('console', (m) => {
    if (/WebAssembly is refused/.test(m.text())) noWasm.push(m.text());
  });
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);

  const cases = [
    { name: 'empty file.txt', size: 0, seed: 1, plain: 'empty file.txt' },
    { name: 'one byte', size: 1, seed: 2, plain: 'one byte' },
    { name: 'piece less one.bin', size: 16383, seed: 3, plain: 'piece less one.bin' },
    { name: 'Ünïcødé 文件 ✓.dat', size: 16384, seed: 4, plain: 'Ünïcødé 文件 ✓.dat' },
    { name: '../../etc/passwd', size: 16385, seed: 5, plain: 'passwd' },
    { name: 'one message over.bin', size: 32769, seed: 7, plain: 'one message over.bin' },
    { name: 'invoice\u202Egpj.exe', size: 5 * 1024 * 1024, seed: 6, plain: 'invoicegpj.exe' },
  ];
  await drop(alice, '#room-view', cases);
  for (const c of cases) {
    // Name, size and type at once; then the bytes, checked.
    await card(bob, c.plain).waitFor();
    const saved = await save(bob, c.plain);
    assert.equal(saved.name, c.plain, 'saved under its plain name');
    assert.equal(saved.bytes.length, c.size, c.plain);
    assert.equal(sha256(saved.bytes), sha256(bytesOf(c.size, c.seed)), `${c.plain}: the SHA-256 of the bytes saved is the sent file's`);
  }
  // The sender sees bob has them all.
  await card(alice, 'invoicegpj.exe').getByText('bob 100%').waitFor();
  // The worker that wrote them hashed them with its WebAssembly SHA-256
  // (its script's policy allows that); the page itself may not compile
  // WebAssembly.
  assert.deepEqual(noWasm, [], 'the worker compiled WebAssembly');
  const pageWasm = await bob.evaluate(() =>
    WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])).then(
      () => 'compiled',
      (e) => String(e),
    ),
  );
  assert.match(pageWasm, /Content Security Policy/, 'the page refuses WebAssembly');

  // An image shows as one (recognised by its content); an SVG never does.
  await drop(alice, '#room-view', [
    { name: 'dot.png', base64: PNG.toString('base64') },
    { name: 'drawing.svg', base64: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>').toString('base64') },
  ]);
  await card(bob, 'dot.png').locator('img.file-image').waitFor();
  // A pasted image is offered too.
  await alice.getByLabel('Message', { exact: true }).evaluate((box, base64) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], 'pasted.png', { type: 'image/png' }));
    box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, PNG.toString('base64'));
  await card(bob, 'pasted.png').locator('img.file-image').waitFor();
  await card(bob, 'drawing.svg').getByText('Received and checked').waitFor();
  assert.equal(await card(bob, 'drawing.svg').locator('img').count(), 0, 'an SVG is not shown as an image');
  assert.match((await card(bob, 'drawing.svg').locator('.file-facts').textContent()) ?? '', /application\/octet-stream/);

  // A piece corrupted in flight is fetched again; the file still arrives intact.
  await bob.evaluate(() => {
    /** @type {any} */ (window).peerchatFiles.corruptNext = true;
  });
  const warned = bob.waitForEvent('console', { predicate: (m) => /did not match its hash/.test(m.text()) });
  const corrupted = bytesOf(700_000, 7);
  const [chooser] = await Promise.all([
    alice.waitForEvent('filechooser'),
    alice.locator('#room-view').getByRole('button', { name: 'Attach file' }).click(),
  ]);
  await chooser.setFiles({ name: 'corrupted on the way.bin', mimeType: 'application/octet-stream', buffer: corrupted });
  await warned;
  const again = await save(bob, 'corrupted on the way.bin');
  assert.equal(sha256(again.bytes), sha256(corrupted));

  // Every transfer channel so far was handed over to bob's file worker;
  // where a browser cannot do that, the page relays the channel to it.
  assert.equal(await bob.evaluate(() => /** @type {any} */ (window).peerchatFiles.nextRelay), 1, 'no channel was relayed');
  await bob.evaluate(() => {
    /** @type {any} */ (window).peerchatFiles.forceRelay = true;
  });
  await drop(alice, '#room-view', [{ name: 'relayed.bin', size: 1024 * 1024 + 1, seed: 10 }]);
  const relayed = await save(bob, 'relayed.bin');
  assert.equal(sha256(relayed.bytes), sha256(bytesOf(1024 * 1024 + 1, 10)));
  assert.ok(await bob.evaluate(() => /** @type {any} */ (window).peerchatFiles.nextRelay > 1), 'that one was relayed');
  await bob.evaluate(() => {
    /** @type {any} */ (window).peerchatFiles.forceRelay = false;
  });

  // Over 10 MiB waits for Accept.
  await drop(alice, '#room-view', [{ name: 'big.iso', size: 11 * 1024 * 1024, seed: 8 }]);
  const big = card(bob, 'big.iso');
  await big.getByText('accept to download it').waitFor();
  await screenshot(bob, 'files-desktop-light');
  await big.getByRole('button', { name: 'Accept big.iso' }).click();
  const bigSaved = await save(bob, 'big.iso');
  assert.equal(sha256(bigSaved.bytes), sha256(bytesOf(11 * 1024 * 1024, 8)));
  await bob.emulateMedia({ colorScheme: 'dark' });
  await screenshot(bob, 'files-desktop-dark');

  // A file in a private conversation.
  await alice.getByRole('button', { name: /^Private message with bob/ }).click();
  await drop(alice, '#private-view', [{ name: 'just for bob.txt', size: 3000, seed: 9 }]);
  await bob.getByRole('button', { name: /^Private message with alice.*1 unread$/ }).click();
  const privateSaved = await save(bob, 'just for bob.txt');
  assert.equal(sha256(privateSaved.bytes), sha256(bytesOf(3000, 9)));
  assert.equal(await bob.locator('#room-view .file-card', { hasText: 'just for bob.txt' }).count(), 0, 'not in the room');
  await bob.setViewportSize({ width: 390, height: 844 });
  await screenshot(bob, 'files-phone-dark');
  await bob.emulateMedia({ colorScheme: 'light' });
  await screenshot(bob, 'files-phone-light');
});

test('a reload of the receiving page resumes, and a late joiner fetches from whoever holds the file', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob');
  await waitForMembers(alice, ['bob']);
  const size = 60 * 1024 * 1024;
  await drop(alice, '#room-view', [{ name: 'long.bin', size, seed: 10 }]);
  const c = card(bob, 'long.bin');
  await c.getByRole('button', { name: 'Accept long.bin' }).click();
  // Reload once part of it is on the device.
  await waitForPage(bob, () => {
    const bar = document.querySelector('.file-card .file-bar');
    return Number(bar?.getAttribute('aria-valuenow') ?? 0) > 8 * 1024 * 1024;
  });
  await screenshot(bob, 'files-progress-desktop-light');
  await bob.reload();
  const resumedAt = await waitForPage(bob, () => {
    const bar = document.querySelector('.file-card .file-bar');
    const now = Number(bar?.getAttribute('aria-valuenow') ?? 0);
    return now > 0 ? now : null;
  });
  assert.ok(Number(resumedAt) >= 4 * 1024 * 1024, `resumed from what was kept (${resumedAt} bytes), not from the start`);
  const saved = await save(bob, 'long.bin');
  assert.equal(sha256(saved.bytes), sha256(bytesOf(size, 10)));

  // Alice goes; carol joins later and fetches it from bob.
  await drop(alice, '#room-view', [{ name: 'small.txt', size: 40_000, seed: 11 }]);
  await save(bob, 'small.txt');
  await alice.getByRole('button', { name: 'Leave the room' }).click();
  await waitForMembers(bob, []);
  const carol = await enter(browser, server.url, link, 'carol');
  await waitForMembers(carol, ['bob']);
  const late = await save(carol, 'small.txt');
  assert.equal(sha256(late.bytes), sha256(bytesOf(40_000, 11)));
});

/**
 * Whether this process runs in the test namespace (scripts/netns.sh), whose
 * only interface is its own loopback: never take a real machine's down.
 */
function canFlap() {
  if (process.env.PEERCHAT_NETNS !== '1') return false;
  try {
    return execFileSync('ip', ['-o', 'link']).toString().trim().split('\n').length === 1;
  } catch {
    return false;
  }
}

/** @param {string[]} args */
function ip(args) {
  execFileSync('ip', args, { stdio: 'ignore' });
}

test('a transfer cut by the network shows stalled, keeps waiting, and resumes', { skip: !canFlap() && 'needs the loopback-only namespace' }, async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  t.after(async () => {
    ip(['link', 'set', 'lo', 'up']);
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await openRoom(browser, server.url, 'alice');
  const bob = await enter(browser, server.url, alice.url(), 'bob');
  await waitForMembers(alice, ['bob']);
  const size = 24 * 1024 * 1024;
  await drop(alice, '#room-view', [{ name: 'through the storm.bin', size, seed: 12 }]);
  const c = card(bob, 'through the storm.bin');
  await c.getByRole('button', { name: 'Accept through the storm.bin' }).click();
  await waitForPage(bob, () => Number(document.querySelector('.file-card .file-bar')?.getAttribute('aria-valuenow') ?? 0) > 2 * 1024 * 1024);
  // Long enough for the transfer to be told stalled (10 s without a byte).
  ip(['link', 'set', 'lo', 'down']);
  try {
    await c.getByText(/^Stalled at/).waitFor({ timeout: 30_000 });
    await bob.emulateMedia({ colorScheme: 'dark' });
    await screenshot(bob, 'files-stalled-desktop-dark');
  } finally {
    ip(['link', 'set', 'lo', 'up']);
    try {
      ip(['route', 'add', '224.0.0.0/4', 'dev', 'lo']);
    } catch {
      // Already there.
    }
  }
  const saved = await save(bob, 'through the storm.bin', 60_000);
  assert.equal(sha256(saved.bytes), sha256(bytesOf(size, 12)));
});
