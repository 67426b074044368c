// The terminal client with browsers: one Chromium page and two
// `peerchat chat` processes in line mode in one room, then the full-screen
// UI in a real terminal (tmux). Runs inside the loopback-only namespace.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  SCREENSHOTS,
  launchBrowser,
  messageTexts,
  openRoom,
  send,
  startServer,
  waitForMembers,
  waitForMessage,
} from './lib/harness.mjs';

test('a browser and two terminal clients all reach each other', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  /** @type {LineClient[]} */
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();

  const bob = new LineClient('bob', BIN, ['chat', link, '--name', 'bob', '--plain']);
  clients.push(bob);
  await bob.waitFor((l) => l.startsWith('* joined as bob; here: alice'), 'err');
  const carol = new LineClient('carol', BIN, ['chat', link, '--name', 'carol', '--plain']);
  clients.push(carol);
  await carol.waitFor((l) => l.startsWith('* joined as carol; here: alice, bob'), 'err');
  await waitForMembers(alice, ['bob', 'carol']);

  await send(alice, 'Hello terminals!');
  await bob.waitFor((l) => l === 'alice: Hello terminals!');
  await carol.waitFor((l) => l === 'alice: Hello terminals!');

  bob.say('hi from bob <b>');
  await waitForMessage(alice, 'hi from bob <b>', 'bob');
  await carol.waitFor((l) => l === 'bob: hi from bob <b>');

  carol.say('and carol, with ünïcödé ✓');
  await waitForMessage(alice, 'and carol, with ünïcödé ✓', 'carol');
  await bob.waitFor((l) => l === 'carol: and carol, with ünïcödé ✓');

  // A message of several lines stays one line of output.
  const box = alice.getByLabel('Message', { exact: true });
  await box.fill('line one');
  await box.press('Shift+Enter');
  await box.pressSequentially('line two');
  await box.press('Enter');
  await bob.waitFor((l) => l === 'alice: line one\\nline two');

  // In line mode too, a mistyped command stays here and `//` sends one
  // `/`.
  bob.say('/bogus');
  await bob.waitFor((l) => l.startsWith('* unknown command /bogus'), 'err');
  bob.say('//slash first');
  await waitForMessage(alice, '/slash first', 'bob');
  await carol.waitFor((l) => l === 'bob: /slash first');
  assert.ok(!(await messageTexts(alice)).some((t) => t.includes('bogus')));

  // Bob's input ends: he leaves once his messages are out.
  bob.say('bye!');
  assert.equal(await bob.finish(), 0);
  await waitForMessage(alice, 'bye!', 'bob');
  await carol.waitFor((l) => l === 'bob: bye!');
  await waitForMembers(alice, ['carol']);
  await carol.waitFor((l) => l === '* bob left', 'err');
  assert.deepEqual(alice.errors, []);
});

test('the full-screen terminal UI chats with a browser', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  const session = `peerchat-${process.pid}`;
  const tmux = (...args) => execFileSync('tmux', ['-L', session, ...args], { encoding: 'utf8' });
  t.after(async () => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      // already gone
    }
    await browser.close();
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');

  tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '24', BIN, 'chat', alice.url(), '--name', 'dora');
  const screen = () => tmux('capture-pane', '-p', '-t', session);
  const waitScreen = async (text) => {
    const deadline = Date.now() + 20_000;
    while (!screen().includes(text)) {
      if (Date.now() > deadline) throw new Error(`screen never showed ${text}:\n${screen()}`);
      await alice.waitForTimeout(100);
    }
  };
  await waitScreen('dora (you)');
  await waitForMembers(alice, ['dora']);
  await waitScreen('alice connected');

  await send(alice, 'Welcome to the terminal, dora');
  await waitScreen('alice: Welcome to the terminal, dora');

  tmux('send-keys', '-t', session, '-l', 'Typed in tmux');
  tmux('send-keys', '-t', session, 'Enter');
  await waitForMessage(alice, 'Typed in tmux', 'dora');
  await waitScreen('you: Typed in tmux');
  const text = screen();
  assert.match(text, /Members \(2\)/);
  assert.match(text, /Message \(Enter sends/);

  // Long messages of several lines: each line on rows of its own, wrapped
  // under the text column, and the newest in view.
  const long = (i) =>
    `long ${i}: ${'a conversation wrapped at word boundaries, '.repeat(3)}the end\nsecond line of ${i}`;
  for (let i = 1; i <= 5; i++) await send(alice, long(i));
  await waitScreen('second line of 5');
  assert.match(screen(), /│ {6,}second line of 5 /);
  assert.match(screen(), /│ {6,}boundaries, /);

  // A mistyped command stays here; `//` sends a line starting with `/`.
  tmux('send-keys', '-t', session, '-l', '/bogus');
  tmux('send-keys', '-t', session, 'Enter');
  await waitScreen('unknown command /bogus');
  tmux('send-keys', '-t', session, '-l', '//slash first');
  tmux('send-keys', '-t', session, 'Enter');
  await waitForMessage(alice, '/slash first', 'dora');
  assert.ok(!(await messageTexts(alice)).some((t) => t.includes('bogus')));

  // Alt+Enter starts a new line in the input.
  tmux('send-keys', '-t', session, '-l', 'first row');
  tmux('send-keys', '-t', session, 'M-Enter');
  tmux('send-keys', '-t', session, '-l', 'second row');
  tmux('send-keys', '-t', session, 'Enter');
  await waitForMessage(alice, 'first row\nsecond row', 'dora');
  await waitScreen('you: first row');
  const keep = (name) => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    writeFileSync(path.join(SCREENSHOTS, name), screen());
  };
  keep('terminal-80x24.txt');

  // On a wide terminal too, the newest is in view.
  tmux('resize-window', '-t', session, '-x', '160', '-y', '40');
  await send(alice, long(6));
  await waitScreen('second line of 6');
  assert.match(screen(), /long 5: /);
  keep('terminal-160x40.txt');

  // Ctrl-C leaves the room cleanly.
  tmux('send-keys', '-t', session, 'C-c');
  await waitForMembers(alice, []);
  await alice.getByRole('log').getByText('dora left').waitFor();
});
