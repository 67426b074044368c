// Two peers without a room: connection codes passed by hand (here, by the
// test) with no server at all, and pairing through the server's mailbox.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import { BIN, launchBrowser, newPage, send, serverAndBrowser, startServer, waitForMessage } from './lib/harness.mjs';

const code = (client) => client.out.find((l) => l.startsWith('peerchat2.'));

test('two terminal clients connect by exchanging codes, with no server', async (t) => {
  const clients = [];
  t.after(() => clients.forEach((c) => c.kill()));
  const alice = new LineClient('alice', BIN, ['chat', '--manual', '--name', 'alice']);
  const bob = new LineClient('bob', BIN, ['chat', '--manual', '--answer', '--name', 'bob']);
  clients.push(alice, bob);

  await alice.waitFor((l) => l.startsWith('peerchat2.'));
  bob.say(code(alice));
  await bob.waitFor((l) => l.startsWith('peerchat2.'));
  alice.say(code(bob));

  await alice.waitFor((l) => l === '* bob is connected', 'err');
  await bob.waitFor((l) => l === '* alice is connected', 'err');
  alice.say('no server in sight');
  await bob.waitFor((l) => l === 'alice: no server in sight');
  bob.say('none at all');
  await alice.waitFor((l) => l === 'bob: none at all');
  assert.equal(await alice.finish(), 0);
  await bob.waitFor((l) => l === '* alice left', 'err');
});

test('a damaged code is refused and can be pasted again', async (t) => {
  const bob = new LineClient('bob', BIN, ['chat', '--manual', '--answer', '--name', 'bob']);
  t.after(() => bob.kill());
  bob.say('peerchat2.not-a-real-code');
  await bob.waitFor((l) => l.includes('damaged') && l.includes('paste it again'), 'err');
  bob.say('hello?');
  await bob.waitFor((l) => l.includes('not a peerchat connection code'), 'err');
});

test('two terminal clients pair through the mailbox', async (t) => {
  const server = await startServer();
  const clients = [];
  t.after(async () => {
    clients.forEach((c) => c.kill());
    await server.stop('SIGKILL');
  });
  // The first side makes the pairing, ID.SECRET; only the id goes to the server.
  const alice = new LineClient('alice', BIN, ['chat', '--mailbox', '--server', server.url, '--name', 'alice']);
  clients.push(alice);
  await alice.waitFor((l) => l.startsWith('mailbox pairing: '), 'err');
  const pairing = /^mailbox pairing: (\S+)/.exec(alice.err.find((l) => l.startsWith('mailbox pairing: ')) ?? '')?.[1] ?? '';
  assert.match(pairing, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
  await alice.waitFor((l) => l.startsWith('* joined as alice'), 'err');
  const bob = new LineClient('bob', BIN, ['chat', '--mailbox', pairing, '--server', server.url, '--name', 'bob']);
  clients.push(bob);
  await alice.waitFor((l) => l === '* bob is connected', 'err');
  await bob.waitFor((l) => l === '* alice is connected', 'err');
  alice.say('found you through the mailbox');
  await bob.waitFor((l) => l === 'alice: found you through the mailbox');
  bob.say('likewise');
  await alice.waitFor((l) => l === 'bob: likewise');
});

/**
 * @param {import('playwright-core').Browser} browser
 * @param {string} origin
 * @param {string} nick
 */
async function manualPage(browser, origin, nick) {
  const page = await newPage(browser, origin);
  await page.goto(`${origin}/manual`);
  await page.getByLabel('Nickname', { exact: true }).fill(nick);
  return page;
}

/**
 * The code a page shows, once it is ready.
 * @param {import('playwright-core').Page} page
 * @param {string} label
 */
async function shownCode(page, label) {
  const box = page.getByLabel(label, { exact: true });
  await box.waitFor();
  await page.waitForFunction(() =>
    /** @type {HTMLTextAreaElement} */ (document.getElementById('my-code')).value.startsWith('peerchat2.'),
  );
  return box.inputValue();
}

test('two browsers connect without a server by swapping codes', async (t) => {
  // The server only serves the page; the test checks it sees no signaling.
  const { server, browser } = await serverAndBrowser(t);
  const alice = await manualPage(browser, server.url, 'alice');
  await alice.getByRole('button', { name: 'Create a connection code' }).click();
  const offer = await shownCode(alice, 'Your connection code');
  assert.match(offer, /^peerchat2\.[A-Za-z0-9_-]+$/);

  const bob = await manualPage(browser, server.url, 'bob');
  await bob.getByLabel('Their connection code').fill(`  ${offer}\n`);
  await bob.getByRole('button', { name: 'Create an answer' }).click();
  const answer = await shownCode(bob, 'Your answer code');
  assert.match(answer, /^peerchat2\./);

  // An offer pasted where the answer belongs is refused clearly.
  await alice.getByLabel('Their answer code').fill(offer);
  await alice.getByRole('button', { name: 'Connect' }).click();
  await alice.getByRole('alert').getByText('an offer code, but an answer code is needed').waitFor();
  await alice.getByLabel('Their answer code').fill(answer);
  await alice.getByRole('button', { name: 'Connect' }).click();

  await alice
    .getByRole('log')
    .getByText('You are connected to bob')
    .waitFor()
    .catch(async (e) => {
      // (Seen once in CI and not since: what each page showed and logged.)
      for (const [who, page] of /** @type {const} */ ([['alice', alice], ['bob', bob]])) {
        const shown = await page.evaluate(() => ['status', 'setup-error', 'log'].map((id) => document.getElementById(id)?.textContent));
        console.log(`${who}: ${JSON.stringify(shown)}\n${page.logs.join('\n')}`);
      }
      throw e;
    });
  await bob.getByRole('log').getByText('You are connected to alice').waitFor();
  // The hello verified both ways; both show one safety number to compare.
  const safety = async (/** @type {import('playwright-core').Page} */ page, /** @type {string} */ nick) => {
    const notice = page.getByRole('log').getByText(`Your safety number with ${nick}:`);
    await notice.waitFor();
    return /(\d{5}( \d{5}){11})/.exec((await notice.textContent()) ?? '')?.[1];
  };
  const number = await safety(alice, 'bob');
  assert.ok(number);
  assert.equal(await safety(bob, 'alice'), number);
  await send(alice, 'no server involved');
  await waitForMessage(bob, 'no server involved', 'alice');
  await send(bob, 'none at all');
  await waitForMessage(alice, 'none at all', 'bob');
  const health = await (await fetch(`${server.url}/healthz`)).json();
  assert.equal(health.connections, 0, 'no signaling connection was ever needed');
  for (const page of [alice, bob]) assert.deepEqual(page.errors, []);
});

test('a browser and a terminal client connect without a server', async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  const native = new LineClient('rusty', BIN, ['chat', '--manual', '--answer', '--name', 'rusty']);
  t.after(async () => {
    native.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await manualPage(browser, server.url, 'alice');
  await alice.getByRole('button', { name: 'Create a connection code' }).click();
  native.say(await shownCode(alice, 'Your connection code'));
  await native.waitFor((l) => l.startsWith('peerchat2.'));
  await alice.getByLabel('Their answer code').fill(code(native));
  await alice.getByRole('button', { name: 'Connect' }).click();
  await alice.getByRole('log').getByText('You are connected to rusty').waitFor();
  await native.waitFor((l) => l === '* alice is connected', 'err');
  await send(alice, 'hello terminal');
  await native.waitFor((l) => l === 'alice: hello terminal');
  native.say('hello browser');
  await waitForMessage(alice, 'hello browser', 'rusty');
});
