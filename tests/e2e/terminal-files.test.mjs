// Files and private messages between three terminal clients, through the
// `peerchat chat` binary in line mode: what a script sees. A private
// message reaches only its recipient (marked private in plain output and in
// JSON); a file sent arrives whole in each download directory, told as
// file_offered and file_saved (path and SHA-256) events; `//` sends a
// literal slash. A terminal withdraws its offer in flight (/cancel): a
// page fetching it shows it cancelled by its sender. Real server, real
// WebRTC between the terminals and the page. Run inside the loopback-only
// network namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { json, terminalClients } from './lib/cli.mjs';
import { openRoom, serverAndBrowser, startServer, waitForMembers } from './lib/harness.mjs';

/**
 * A server, gone after the test, and terminal clients (`terminalClients`)
 * started with whatever `extra` gives every client of the test.
 * @param {import('node:test').TestContext} t
 * @param {(name: string, dir: string) => string[]} extra
 */
async function terminals(t, extra) {
  const server = await startServer();
  t.after(() => server.stop('SIGKILL'));
  const { dir, client: start } = terminalClients(t, 'peerchat-terminal-files-');
  /**
   * @param {string} name
   * @param {string[]} args
   */
  const client = (name, args) => start(name, [...args, ...extra(name, dir)]);
  return { server, dir, client };
}

test('terminals: /msg reaches one member only, /send delivers a file to each, // sends a slash', async (t) => {
  const { server, dir, client } = await terminals(t, () => ['--no-history']);

  const alice = client('alice', ['--server', server.url, '--json']);
  await alice.waitFor((l) => l.startsWith('new room: '), 'err');
  const link = alice.err.find((l) => l.startsWith('new room: '))?.split(' ')[2] ?? '';
  const bob = client('bob', [link, '--plain']);
  const carol = client('carol', [link, '--json']);
  await bob.waitFor((l) => l.startsWith('* joined as bob'), 'err');
  await carol.waitFor((l) => l.startsWith('* joined as carol') || json(l)?.event === 'joined');

  alice.say('hello both');
  await bob.waitFor((l) => l === 'alice: hello both');
  await carol.waitFor((l) => json(l)?.event === 'message' && json(l).text === 'hello both');

  // Private: bob sees it marked, carol never does.
  alice.say('/msg bob psst, just you');
  await bob.waitFor((l) => l === '[private] alice: psst, just you');
  await alice.waitFor((l) => json(l)?.event === 'private_delivery' && json(l).with.nick === 'bob');
  const mine = alice.out.map(json).find((e) => e?.event === 'private_message');
  assert.equal(mine.with.nick, 'bob');
  assert.equal(mine.message.own, true);
  bob.say('/msg alice got it');
  await alice.waitFor((l) => json(l)?.event === 'private_message' && json(l).message.text === 'got it');

  // A file to the room, and a literal slash after it: once carol has the
  // message, everything alice sent before it reached her.
  const file = path.join(dir, 'a report.pdf');
  const bytes = Buffer.alloc(200_000);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = (i * 7919) % 251;
  writeFileSync(file, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  alice.say(`/send ${file}`);
  alice.say('//shrug');
  await bob.waitFor((l) => l === 'alice: /shrug');
  await carol.waitFor((l) => json(l)?.event === 'message' && json(l).text === '/shrug');
  const offered = alice.out.map(json).find((e) => e?.event === 'file_offered');
  assert.equal(offered.file.own, true);
  assert.equal(offered.file.sha256, sha256);

  await carol.waitFor((l) => json(l)?.event === 'file_saved');
  const saved = carol.out.map(json).find((e) => e?.event === 'file_saved');
  assert.equal(saved.sha256, sha256);
  assert.equal(saved.path, path.join(dir, 'carol downloads', 'a report.pdf'));
  assert.equal(createHash('sha256').update(readFileSync(saved.path)).digest('hex'), sha256);
  await bob.waitFor((l) => l.startsWith('* a report.pdf saved as '), 'err');
  assert.deepEqual(readFileSync(path.join(dir, 'bob downloads', 'a report.pdf')), bytes);

  // Carol saw nothing private.
  for (const line of carol.out) {
    assert.ok(!line.includes('psst') && !line.includes('got it'), line);
    assert.notEqual(json(line)?.event, 'private_message');
  }
  for (const c of [alice, bob, carol]) assert.equal(await c.finish(), 0, `${c.name} exits cleanly`);
});

test('a terminal withdraws its offer while a page fetches it: the page shows it cancelled by its sender', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const { dir, client } = terminalClients(t, 'peerchat-terminal-withdraw-');
  const page = await openRoom(browser, server.url, 'alice');
  const bob = client('bob', [page.url(), '--json', '--no-history']);
  await waitForMembers(page, ['bob']);
  // Over the page's 10 MiB: it waits until accepted, so the cancel comes
  // while it is in flight.
  const file = path.join(dir, 'big.bin');
  writeFileSync(file, Buffer.alloc(48 << 20, 7));
  bob.say(`/send ${file}`);
  const card = page.locator('.file-card').filter({ has: page.locator('.file-name').getByText('big.bin', { exact: true }) });
  await card.getByRole('button', { name: 'Accept big.bin' }).click();
  await page.waitForFunction(() => Number(document.querySelector('.file-card .file-bar')?.getAttribute('aria-valuenow')) > 0);
  bob.say('/cancel big.bin');
  await card.getByText('The sender cancelled it.').waitFor();
  await bob.waitFor((l) => json(l)?.event === 'file_withdrawn' && json(l).file.name === 'big.bin');
  assert.equal(await card.getByRole('button', { name: 'Save big.bin' }).count(), 0, 'nothing to save');
  assert.equal(await bob.finish(), 0, 'bob exits cleanly');
});

test('a terminal killed while it fetches a file resumes it when it starts again, fetching only what it lacked', async (t) => {
  const { server, dir, client } = await terminals(t, (name, dir) => [
    '--json',
    '--history-file',
    path.join(dir, `${name}.history`),
    '--accept-files',
    '1000000000',
  ]);
  const alice = client('alice', ['--server', server.url]);
  await alice.waitFor((l) => l.startsWith('new room: '), 'err');
  const link = alice.err.find((l) => l.startsWith('new room: '))?.split(' ')[2] ?? '';
  const bob = client('bob', [link]);
  await bob.waitFor((l) => json(l)?.event === 'joined');

  // Large enough that bob reports progress (every 250 ms) well before the
  // end even on an idle machine: at 24 MiB the whole file could arrive
  // between two reports.
  const size = 128 << 20;
  const bytes = randomBytes(size);
  const file = path.join(dir, 'big.bin');
  writeFileSync(file, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  alice.say(`/send ${file}`);
  // A quarter of it arrived: bob is killed.
  await bob.waitFor((l) => json(l)?.event === 'file_progress' && json(l).bytes >= size / 4);
  bob.kill();
  await bob.exited;
  const kept = readdirSync(path.join(dir, 'bob downloads'));
  assert.ok(!kept.includes('big.bin'), 'nothing under the final name');

  const again = client('bob', [link]);
  await again.waitFor((l) => json(l)?.event === 'file_saved' || json(l)?.event === 'file_failed');
  const saved = again.out.map(json).find((e) => e?.event === 'file_saved');
  assert.ok(saved, again.out.join('\n'));
  assert.equal(saved.sha256, sha256);
  assert.equal(createHash('sha256').update(readFileSync(saved.path)).digest('hex'), sha256);
  assert.ok(saved.received < size, `fetched ${saved.received} bytes of ${size} again`);
  assert.ok(saved.received > 0);
  // Nothing else is left in the download directory.
  assert.deepEqual(readdirSync(path.join(dir, 'bob downloads')), ['big.bin']);
  for (const c of [alice, again]) assert.equal(await c.finish(), 0, `${c.name} exits cleanly`);
});
