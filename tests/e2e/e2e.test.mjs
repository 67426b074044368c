// Protocol version 2 end to end, in real browsers and terminal clients: the
// room secret stays in the link's fragment, signals are sealed on the wire.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import { closeVerify, memberMark, safetyNumberShown, terminalSafetyNumber } from './lib/safety.mjs';
import {
  BIN,
  ROOT,
  join,
  launchBrowser,
  launchProfile,
  messageTexts,
  newPage,
  newPageIn,
  noticeTexts,
  openRoom,
  screenshot,
  send,
  serverAndBrowser,
  startServer,
  unexpectedErrors,
  waitForMembers,
  waitForMessage,
  waitForMessages,
  waitForPage,
  waitForStored,
} from './lib/harness.mjs';

const PYTHON = process.env.PYTHON ?? 'python3';
/** The independent client (tests/interop), here misbehaving on purpose. */
const AIORTC_PEER = `${ROOT}tests/interop/aiortc_peer.py`;

test('a room link without its secret cannot join, and the page says what to do', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const page = await newPage(browser, server.url);
  let sockets = 0;
  page.on('websocket', () => (sockets += 1));
  await page.goto(`${server.url}/r/abcdefghijklmnopqrstuv`);
  await page.getByRole('heading', { name: 'This room link is incomplete' }).waitFor();
  assert.match(await page.locator('#bad-room-view').textContent() ?? '', /including the part after #/);
  await page.goto(`${server.url}/r/abcdefghijklmnopqrstuv#damaged`);
  await page.getByRole('heading', { name: 'This room link is damaged' }).waitFor();
  assert.equal(await page.getByLabel('Nickname', { exact: true }).isVisible(), false);
  assert.equal(sockets, 0, 'the page did not even connect');
});

test('safety numbers: the same on both sides, marked verified, kept across a reload, changed with a new identity', async (t) => {
  // Members leave as soon as their connection ends: a page that lost its
  // identity can take its nickname again at once.
  const server = await startServer(['--resume-grace', '0s']);
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await openRoom(browser, server.url, 'alice');
  const bob = await newPage(browser, server.url);
  await bob.goto(alice.url());
  await join(bob, 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);

  const seenByAlice = await safetyNumberShown(alice, 'bob');
  const seenByBob = await safetyNumberShown(bob, 'alice');
  assert.equal(seenByAlice, seenByBob, 'one safety number for the pair');
  await screenshot(alice, 'verify-dialog');
  await closeVerify(bob, 'alice');
  const dialog = alice.getByRole('dialog', { name: 'Verify bob' });
  await dialog.getByRole('button', { name: 'Mark as verified' }).click();
  await dialog.getByText('You marked bob as verified').waitFor();
  await closeVerify(alice, 'bob');
  await waitForPage(alice, () =>
    [...document.querySelectorAll('[aria-label="Members"] li')].some((l) => l.textContent?.includes('✓ verified')),
  );

  // A reload keeps bob's identity: the same number, still verified.
  await bob.reload();
  await waitForMembers(bob, ['alice']);
  await waitForMembers(alice, ['bob']);
  assert.equal(await safetyNumberShown(alice, 'bob'), seenByAlice);
  await dialog.getByText('You marked bob as verified').waitFor();
  await closeVerify(alice, 'bob');
  assert.equal(await memberMark(alice, 'bob'), '✓ verified');

  // Bob clears the site's data: a new identity. Alice is told, prominently,
  // and the verification is gone.
  const cdp = await bob.context().newCDPSession(bob);
  await cdp.send('Storage.clearDataForOrigin', { origin: server.url, storageTypes: 'all' });
  await bob.reload();
  await join(bob, 'bob');
  await waitForMembers(alice, ['bob']);
  await alice.getByRole('log').getByText('bob’s safety number has changed').waitFor();
  assert.equal(await memberMark(alice, 'bob'), '⚠ safety number changed');
  const changed = await safetyNumberShown(alice, 'bob');
  assert.notEqual(changed, seenByAlice);
  await dialog.getByText('safety number has changed').waitFor();
  assert.equal(await dialog.getByRole('button', { name: 'Mark as verified' }).isVisible(), true);
  for (const page of [alice, bob]) assert.deepEqual(unexpectedErrors(page), []);
});

/**
 * A server, a browser, alice's page in a new room, and dora, a terminal
 * client in line mode, connected to her; all stopped after the test.
 * `run` starts more processes (stopped after the test too).
 * @param {import('node:test').TestContext} t
 */
async function aliceAndDora(t) {
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
  /**
   * @param {string} name
   * @param {string} command
   * @param {string[]} args
   */
  const run = (name, command, args) => {
    const client = new LineClient(name, command, args);
    clients.push(client);
    return client;
  };
  const startDora = async () => {
    const dora = run('dora', BIN, ['chat', alice.url(), '--name', 'dora', '--plain']);
    await dora.waitFor((l) => l === '* alice is connected', 'err');
    return dora;
  };
  return { server, browser, alice, dora: await startDora(), startDora, run };
}

test('a terminal client shows the safety number the page shows, and keeps its identity across a restart', async (t) => {
  const { alice, dora: first, startDora } = await aliceAndDora(t);
  let dora = first;
  await waitForMembers(alice, ['dora']);
  const seen = await terminalSafetyNumber(dora, 'alice');
  assert.equal(await safetyNumberShown(alice, 'dora'), seen, 'the page and the terminal show one number');
  await closeVerify(alice, 'dora');
  dora.say('/verified alice');
  await dora.waitFor((l) => l === '* alice is marked verified', 'err');
  assert.equal(await dora.finish(), 0);

  // The key file is kept: the same identity after a restart, still verified.
  dora = await startDora();
  assert.equal(await terminalSafetyNumber(dora, 'alice'), seen);
  await dora.waitFor((l) => l === '* alice is marked verified ✓', 'err');
  await waitForMembers(alice, ['dora']);
  assert.equal(await safetyNumberShown(alice, 'dora'), seen);
  assert.equal(await memberMark(alice, 'dora'), null, 'nothing changed');
});

test('on the wire: the server relays no SDP or candidate in clear, and the secret never leaves the clients', async (t) => {
  const server = await startServer([], { logLevel: 'debug' });
  const browser = await launchBrowser();
  /** @type {LineClient | null} */
  let dora = null;
  t.after(async () => {
    dora?.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });
  /** @type {string[]} every WebSocket frame, both ways, of both pages */
  const frames = [];
  /** @type {string[]} every HTTP request: its URL and headers */
  const requests = [];
  /** @param {import('playwright-core').Page} page */
  const record = (page) => {
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => frames.push(String(f.payload)));
      ws.on('framereceived', (f) => frames.push(String(f.payload)));
    });
    page.on('request', (r) => requests.push(`${r.url()} ${JSON.stringify(r.headers())}`));
  };
  const alice = await newPage(browser, server.url);
  record(alice);
  await alice.goto(`${server.url}/`);
  await alice.waitForURL(/#/);
  await join(alice, 'alice');
  const link = alice.url();
  const secret = new URL(link).hash.slice(1);
  const bob = await newPage(browser, server.url);
  record(bob);
  await bob.goto(link);
  await join(bob, 'bob');
  dora = new LineClient('dora', BIN, ['chat', link, '--name', 'dora', '--plain']);
  await waitForMembers(alice, ['bob', 'dora']);
  await waitForMembers(bob, ['alice', 'dora']);
  await dora.waitFor((l) => l === '* alice is connected', 'err');
  await dora.waitFor((l) => l === '* bob is connected', 'err');
  // Chat flows over every pair: browser to browser, browser to terminal.
  await send(alice, 'sealed all the way');
  await waitForMessage(bob, 'sealed all the way', 'alice');
  await dora.waitFor((l) => l === 'alice: sealed all the way');
  dora.say('and from the terminal');
  await waitForMessage(alice, 'and from the terminal', 'dora');
  await waitForMessage(bob, 'and from the terminal', 'dora');

  // Every signal between any two of them passed a browser's socket.
  const signals = frames.filter((f) => f.includes('"signal"'));
  assert.ok(signals.length >= 6, `signals relayed: ${signals.length}`);
  for (const frame of frames) {
    for (const clear of ['v=0', 'a=fingerprint', 'candidate:', 'ice-ufrag']) {
      assert.ok(!frame.includes(clear), `${clear} in a frame: ${frame.slice(0, 200)}`);
    }
  }
  for (const [what, texts] of /** @type {[string, string[]][]} */ ([
    ['a WebSocket frame', frames],
    ['an HTTP request', requests],
    ['a server log line', server.log],
    ["the terminal client's output", [...dora.out, ...dora.err]],
  ])) {
    assert.ok(texts.length > 0, `nothing recorded as ${what}`);
    for (const text of texts) assert.ok(!text.includes(secret), `the secret in ${what}: ${text.slice(0, 200)}`);
  }
  for (const page of [alice, bob]) assert.deepEqual(unexpectedErrors(page), []);
});

test('a hello that does not verify closes the connection; both clients say why', async (t) => {
  const { alice, dora, run } = await aliceAndDora(t);
  // A member whose hello binds other fingerprints than the connection's, as
  // a man in the middle forwarding someone's hello would.
  run('mallory', PYTHON, [AIORTC_PEER, alice.url(), 'mallory', '--bad-hello']);
  await alice.getByRole('log').getByText('Could not verify mallory').first().waitFor();
  await waitForPage(alice, () =>
    [...document.querySelectorAll('[aria-label="Members"] li')].some(
      (l) => l.querySelector('.member-name')?.textContent === 'mallory' && /** @type {HTMLElement} */ (l).dataset.state === 'not_verified',
    ),
  );
  await dora.waitFor((l) => l.startsWith('* could not verify mallory: its hello does not match this connection'), 'err');
  // Nothing from mallory was shown, and the others still chat.
  await send(alice, 'still here');
  await dora.waitFor((l) => l === 'alice: still here');
  assert.ok(!dora.out.some((l) => l.startsWith('mallory:')));
});

test("a member's forged history is refused by both clients, never kept, never passed on", async (t) => {
  const { server, browser, alice, dora, run } = await aliceAndDora(t);
  await send(alice, 'alice wrote this');
  await dora.waitFor((l) => l === 'alice: alice wrote this');
  dora.say('dora wrote this');
  await waitForMessage(alice, 'dora wrote this', 'dora');
  // Mallory answers each sync with messages signed in others' names: one
  // attributed to the other member, one to the receiver itself.
  const mallory = run('mallory', PYTHON, [AIORTC_PEER, alice.url(), 'mallory', '--forge']);
  await alice.getByRole('log').getByText('relayed by mallory', { exact: false }).first().waitFor();
  assert.match(
    (await noticeTexts(alice)).join('\n'),
    /2 messages attributed to dora, relayed by mallory|attributed to (alice|dora), relayed by mallory, (was|were) refused/,
  );
  await dora.waitFor((l) => /attributed to (alice|dora), relayed by mallory, refused/.test(l), 'err');
  mallory.say('mallory wrote this');
  await waitForMessage(alice, 'mallory wrote this', 'mallory');
  await dora.waitFor((l) => l === 'mallory: mallory wrote this');
  mallory.kill();
  // Not shown, not kept: alice keeps exactly the three real messages.
  assert.deepEqual((await messageTexts(alice)).filter((t) => t.startsWith('FORGED')), []);
  assert.ok(!dora.out.some((l) => l.includes('FORGED')));
  await waitForStored(alice, 3);
  // Not passed on: a newcomer gets the history from alice and dora, without them.
  const carol = await newPage(browser, server.url);
  await carol.goto(alice.url());
  await join(carol, 'carol');
  await waitForMessages(carol, ['alice wrote this', 'dora wrote this', 'mallory wrote this']);
  await waitForMembers(carol, ['alice', 'dora']);
  assert.deepEqual((await messageTexts(carol)).filter((t) => t.startsWith('FORGED')), []);
});

test("identity across a browser's restart: the same safety number; a terminal client's cleared data: the others see it changed", async (t) => {
  const server = await startServer(['--resume-grace', '0s']);
  const profile = await mkdtemp(path.join(tmpdir(), 'peerchat-profile-'));
  // Dora's own data directory: her key file is hers to lose.
  const home = await mkdtemp(path.join(tmpdir(), 'peerchat-dora-'));
  let context = await launchProfile(profile, server.url);
  /** @type {LineClient | null} */
  let dora = null;
  t.after(async () => {
    dora?.kill();
    await context.close();
    await server.stop('SIGKILL');
    for (const dir of [profile, home]) await rm(dir, { recursive: true, force: true });
  });
  const startDora = async (/** @type {string} */ link) => {
    const client = new LineClient('dora', BIN, ['chat', link, '--name', 'dora', '--plain'], { XDG_DATA_HOME: home });
    await client.waitFor((l) => l === '* alice is connected', 'err');
    return client;
  };
  let alice = await newPageIn(context);
  await alice.goto(`${server.url}/`);
  await alice.waitForURL(/#/);
  await join(alice, 'alice');
  const link = alice.url();
  dora = await startDora(link);
  const seen = await terminalSafetyNumber(dora, 'alice');
  assert.equal(await safetyNumberShown(alice, 'dora'), seen);
  await closeVerify(alice, 'dora');

  // Alice's browser stops and starts again on its profile: the same
  // identity (the page joins again by itself), the same number.
  const connected = dora.err.filter((l) => l === '* alice is connected').length;
  await context.close();
  context = await launchProfile(profile, server.url);
  alice = await newPageIn(context);
  await alice.goto(link);
  await waitForMembers(alice, ['dora']);
  await dora.waitFor(() => dora?.err.filter((l) => l === '* alice is connected').length === connected + 1, 'err');
  assert.equal(await safetyNumberShown(alice, 'dora'), seen);
  await closeVerify(alice, 'dora');
  assert.equal(await memberMark(alice, 'dora'), null, 'nothing changed');
  assert.equal(await terminalSafetyNumber(dora, 'alice'), seen);
  assert.ok(!dora.err.some((l) => l.includes('safety number has changed')));

  // Dora clears her data (key file and store, as clearing a site's data
  // does in a browser): a new identity, which alice is told about.
  assert.equal(await dora.finish(), 0);
  await rm(path.join(home, 'peerchat'), { recursive: true });
  dora = await startDora(link);
  await alice.getByRole('log').getByText('dora’s safety number has changed').waitFor();
  assert.equal(await memberMark(alice, 'dora'), '⚠ safety number changed');
  const changed = await terminalSafetyNumber(dora, 'alice');
  assert.notEqual(changed, seen);
  assert.equal(await safetyNumberShown(alice, 'dora'), changed);
  assert.deepEqual(unexpectedErrors(alice), []);
});
