// A man in the middle that knows the room secret (tests/e2e/lib/mitm.mjs,
// behind the malicious server of lib/proxy.mjs) relays between two members
// with WebRTC peers of its own. Forwarding their hellos as they are fails
// the binding on both sides; signing hellos with its own key gives the two
// members different safety numbers, and where they had met before, both
// are told that the other's safety number has changed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  join,
  launchBrowser,
  messageTexts,
  newPage,
  screenshot,
  send,
  startServer,
  unexpectedErrors,
  waitForMembers,
  waitForPage,
} from './lib/harness.mjs';
import { startMitm } from './lib/mitm.mjs';
import { startProxy } from './lib/proxy.mjs';
import { closeVerify, memberMark, safetyNumberShown, terminalSafetyNumber } from './lib/safety.mjs';

/**
 * A server behind a malicious one, a browser, and alice's page in a new
 * room opened through it; all stopped after the test.
 * @param {import('node:test').TestContext} t
 */
async function world(t) {
  const server = await startServer(['--resume-grace', '0s']);
  const proxy = await startProxy(server.url);
  const browser = await launchBrowser();
  /** @type {LineClient[]} */
  const clients = [];
  /** @type {string[]} terminal clients' data directories */
  const homes = [];
  t.after(async () => {
    for (const c of clients) c.kill();
    for (const home of homes) await rm(home, { recursive: true, force: true });
    await proxy.close();
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await newPage(browser, proxy.url);
  await alice.goto(`${proxy.url}/`);
  await alice.waitForURL(/\/r\/[A-Za-z0-9_-]{22}#[A-Za-z0-9_-]{43}$/);
  await join(alice, 'alice');
  await alice.getByRole('log').getByText('You joined as alice').waitFor();
  const mallory = await newPage(browser, proxy.url);
  /**
   * @param {string} name
   * @param {string[]} args
   * @param {Record<string, string>} [env]
   */
  const terminal = (name, args, env = {}) => {
    const client = new LineClient(name, BIN, args, env);
    clients.push(client);
    return client;
  };
  return { server, proxy, browser, alice, mallory, link: alice.url(), terminal, homes };
}

/**
 * Resolves once `page` shows `nick` as not verified.
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 */
async function waitForNotVerified(page, nick) {
  await waitForPage(
    page,
    (nick) =>
      [...document.querySelectorAll('[aria-label="Members"] li')].some(
        (l) => l.querySelector('.member-name')?.textContent === nick && /** @type {HTMLElement} */ (l).dataset.state === 'not_verified',
      ),
    nick,
  );
}

test('a man in the middle that forwards the hellos as they are: both browsers refuse the connection and say so', async (t) => {
  const { proxy, browser, alice, mallory, link } = await world(t);
  const mitm = await startMitm({ proxy, page: mallory, link, pair: ['alice', 'bob'], mode: 'verbatim' });
  const bob = await newPage(browser, proxy.url);
  await bob.goto(link);
  await join(bob, 'bob');
  await alice.getByRole('log').getByText('Could not verify bob: its hello does not match this connection').first().waitFor();
  await bob.getByRole('log').getByText('Could not verify alice: its hello does not match this connection').first().waitFor();
  await waitForNotVerified(alice, 'bob');
  await waitForNotVerified(bob, 'alice');
  assert.ok(mitm.stats.opened > 0 && mitm.stats.sent > 0, 'the signals went through the man in the middle');
  await send(alice, 'through the middle?');
  await screenshot(bob, 'mitm-verbatim');
  assert.ok(!(await messageTexts(bob)).includes('through the middle?'));
  for (const page of [alice, bob]) assert.deepEqual(unexpectedErrors(page), []);
});

test('a man in the middle with its own key: the two browsers see different safety numbers, and both are told it changed', async (t) => {
  const { proxy, browser, alice, mallory, link } = await world(t);
  const bob = await newPage(browser, proxy.url);
  await bob.goto(link);
  await join(bob, 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  // First they meet directly: one safety number, and each pins the other.
  const honest = await safetyNumberShown(alice, 'bob');
  assert.equal(await safetyNumberShown(bob, 'alice'), honest);
  await closeVerify(alice, 'bob');
  await closeVerify(bob, 'alice');

  // Both leave; the man in the middle is there when they come back.
  for (const page of [alice, bob]) await page.goto('about:blank');
  const mitm = await startMitm({ proxy, page: mallory, link, pair: ['alice', 'bob'], mode: 'own-key' });
  // (Each page joins again by itself, under the nickname it had.)
  for (const page of [alice, bob]) await page.goto(link);
  // Its hellos verify (they are its own, over its own view), so both show
  // the other connected, but both are told the key changed.
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  await alice.getByRole('log').getByText('bob’s safety number has changed').waitFor();
  await bob.getByRole('log').getByText('alice’s safety number has changed').waitFor();
  assert.equal(await memberMark(alice, 'bob'), '⚠ safety number changed');
  assert.equal(await memberMark(bob, 'alice'), '⚠ safety number changed');
  const seenByAlice = await safetyNumberShown(alice, 'bob');
  const seenByBob = await safetyNumberShown(bob, 'alice');
  await screenshot(alice, 'mitm-own-key');
  assert.notEqual(seenByAlice, seenByBob, 'compared out of band, the numbers differ');
  assert.notEqual(seenByAlice, honest);
  assert.notEqual(seenByBob, honest);
  assert.ok(mitm.stats.opened > 0);
  for (const page of [alice, bob]) assert.deepEqual(unexpectedErrors(page), []);
});

/**
 * A member of the room that is a page or a terminal client, behind one
 * interface: enter, leave, what it is told, the safety number it shows.
 * @param {Awaited<ReturnType<typeof world>>} w
 * @param {'page' | 'terminal'} kind
 * @param {string} nick
 */
async function member(w, kind, nick) {
  if (kind === 'page') {
    const page = await newPage(w.browser, w.proxy.url);
    await page.goto(w.link);
    await join(page, nick);
    return {
      nick,
      async back() {
        await page.goto(w.link);
      },
      async leave() {
        await page.goto('about:blank');
      },
      /** @param {string} other */
      async connected(other) {
        await waitForMembers(page, [other]);
      },
      /** @param {string} text */
      async told(text) {
        await page.getByRole('log').getByText(text, { exact: false }).first().waitFor();
      },
      /** @param {string} other */
      async number(other) {
        const digits = await safetyNumberShown(page, other);
        await closeVerify(page, other);
        return digits;
      },
    };
  }
  // Its own data directory: its own identity key and pins.
  const home = await mkdtemp(path.join(tmpdir(), `peerchat-${nick}-`));
  w.homes.push(home);
  const start = () => w.terminal(nick, ['chat', w.link, '--name', nick, '--plain'], { XDG_DATA_HOME: home });
  let client = start();
  return {
    nick,
    async back() {
      client = start();
    },
    async leave() {
      assert.equal(await client.finish(), 0);
    },
    /** @param {string} other */
    async connected(other) {
      await client.waitFor((l) => l === `* ${other} is connected`, 'err');
    },
    /** @param {string} text */
    async told(text) {
      await client.waitFor((l) => l.startsWith('* ') && l.toLowerCase().includes(text.toLowerCase()), 'err');
    },
    /** @param {string} other */
    async number(other) {
      return terminalSafetyNumber(client, other);
    },
  };
}

for (const [kindA, kindB] of /** @type {const} */ ([['page', 'terminal'], ['terminal', 'terminal']])) {
  test(`a man in the middle between a ${kindA === 'page' ? 'browser' : 'terminal client'} and a terminal client: verbatim hellos fail, its own key shows as changed`, async (t) => {
    const w = await world(t);
    await w.alice.goto('about:blank');
    // Verbatim first: neither side verifies the other.
    let mitm = await startMitm({ proxy: w.proxy, page: w.mallory, link: w.link, pair: ['dora', 'ed'], mode: 'verbatim' });
    const a = await member(w, kindA, 'dora');
    const b = await member(w, kindB, 'ed');
    await a.told('could not verify ed: its hello does not match this connection');
    await b.told('could not verify dora: its hello does not match this connection');
    mitm.stop();
    await a.leave();
    await b.leave();
    // Then they meet directly, and pin each other's keys.
    await a.back();
    await b.back();
    await a.connected('ed');
    await b.connected('dora');
    const honest = await a.number('ed');
    assert.equal(await b.number('dora'), honest);
    await a.leave();
    await b.leave();
    // With its own key in the middle: both told, two different numbers.
    mitm = await startMitm({ proxy: w.proxy, page: w.mallory, link: w.link, pair: ['dora', 'ed'], mode: 'own-key' });
    await a.back();
    await b.back();
    await a.connected('ed');
    await b.connected('dora');
    await a.told(kindA === 'page' ? 'ed’s safety number has changed' : "ed's safety number has changed");
    await b.told("dora's safety number has changed");
    const seenByA = await a.number('ed');
    const seenByB = await b.number('dora');
    assert.notEqual(seenByA, seenByB, 'compared out of band, the numbers differ');
    assert.notEqual(seenByA, honest);
    assert.ok(mitm.stats.opened > 0);
  });
}
