// A flapping network: the namespace's loopback goes down for a few seconds,
// several times, at random moments, while two browsers and a terminal client
// each send 200 messages. Afterwards every one of them must hold all 600,
// exactly once, in the same order. Needs the loopback-only namespace
// (scripts/netns.sh) and the right to take its loopback down.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import { BIN, join, launchBrowser, newPage, openRoom, startServer, waitForMembers } from './lib/harness.mjs';

const EACH = 200;
const FLAPS = 4;

/** @param {string[]} args */
function ip(args) {
  execFileSync('ip', args, { stdio: 'ignore' });
}

/** @param {number} ms */
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

/** Takes the loopback down and up again, `FLAPS` times, at random moments. */
async function flap() {
  for (let i = 0; i < FLAPS; i += 1) {
    await pause(300 + Math.random() * 1500);
    ip(['link', 'set', 'lo', 'down']);
    await pause(1000 + Math.random() * 2000);
    ip(['link', 'set', 'lo', 'up']);
    try {
      ip(['route', 'add', '224.0.0.0/4', 'dev', 'lo']);
    } catch {
      // Already there.
    }
  }
}

/**
 * Sends `count` messages from a page through its message box, a few
 * milliseconds apart.
 * @param {import('playwright-core').Page} page
 * @param {string} who
 * @param {number} count
 */
async function sendMany(page, who, count) {
  await page.evaluate(
    async ({ who, count }) => {
      const box = /** @type {HTMLTextAreaElement} */ (document.getElementById('message'));
      const form = /** @type {HTMLFormElement} */ (document.getElementById('composer'));
      for (let i = 1; i <= count; i += 1) {
        box.value = `${who} ${i}`;
        form.requestSubmit();
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
      }
    },
    { who, count },
  );
}

/**
 * The messages a page keeps, in the order it shows them, as `author/seq`
 * keys and texts. The log draws a window of them (chatlog.js `WINDOW`), so
 * this walks it as a reader would: up to the beginning, then down to the
 * end, a page at a time.
 * @param {import('playwright-core').Page} page
 */
function shown(page) {
  return page.evaluate(async () => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    const frames = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(undefined))));
    /** @param {boolean} up */
    const move = async (up) => {
      log.dispatchEvent(new WheelEvent('wheel'));
      log.scrollTop = up ? 0 : log.scrollHeight;
      await frames();
    };
    const drawn = () =>
      [...log.querySelectorAll('article.msg')].map((m) => {
        const el = /** @type {HTMLElement} */ (m);
        return { key: `${el.dataset.author}/${el.dataset.seq}`, text: el.querySelector('.msg-text')?.textContent ?? '' };
      });
    for (let i = 0; i < 100 && log.querySelector('.log-edge')?.textContent === 'Loading older messages…'; i += 1) await move(true);
    /** @type {Map<string, {key: string, text: string}>} */
    const seen = new Map();
    // Down to the end: nothing new after a few moves to the bottom.
    for (let still = 0, i = 0; still < 3 && i < 200; i += 1) {
      const before = seen.size;
      for (const m of drawn()) if (!seen.has(m.key)) seen.set(m.key, m);
      still = seen.size === before ? still + 1 : 0;
      await move(false);
    }
    return [...seen.values()];
  });
}

test('a flapping network loses no message: 3 × 200 everywhere, once, in one order', { skip: !canFlap() && 'needs the loopback-only namespace' }, async (t) => {
  const server = await startServer();
  const browser = await launchBrowser();
  /** @type {LineClient[]} */
  const clients = [];
  t.after(async () => {
    ip(['link', 'set', 'lo', 'up']);
    for (const c of clients) c.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await newPage(browser, server.url);
  await bob.goto(link);
  await join(bob, 'bob');
  const carol = new LineClient('carol', BIN, ['chat', link, '--name', 'carol', '--json', '--no-history', '--linger', '120s']);
  clients.push(carol);
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);

  const carolSends = (async () => {
    for (let i = 1; i <= EACH; i += 1) {
      carol.say(`carol ${i}`);
      await pause(5 + Math.random() * 20);
    }
  })();
  await Promise.all([flap(), sendMany(alice, 'alice', EACH), sendMany(bob, 'bob', EACH), carolSends]);

  // Everyone ends up with all 600.
  const total = 3 * EACH;
  for (const page of [alice, bob]) {
    const until = Date.now() + 120_000;
    for (let n = (await shown(page)).length; n < total; n = (await shown(page)).length) {
      assert.ok(Date.now() < until, `the page keeps ${n} of ${total}`);
    }
  }
  /** carol's messages as the engine reported them (each new one once). */
  const carolMessages = () =>
    carol.out
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'message')
      .map((m) => ({ key: `${m.from.id}/${m.seq}`, clock: m.clock, author: m.from.id, seq: m.seq, text: m.text }));
  const deadline = Date.now() + 120_000;
  while (carolMessages().length < total) {
    assert.ok(Date.now() < deadline, `carol has ${carolMessages().length} of ${total}`);
    await carol.waitFor(() => carolMessages().length >= total).catch(() => {});
  }

  const a = await shown(alice);
  const b = await shown(bob);
  const c = carolMessages()
    .sort((x, y) => x.clock - y.clock || (x.author < y.author ? -1 : x.author > y.author ? 1 : 0) || x.seq - y.seq);
  for (const [name, list] of [['alice', a], ['bob', b], ['carol', c]]) {
    assert.equal(list.length, total, `${name} holds each message once`);
    assert.equal(new Set(list.map((m) => m.key)).size, total, `${name} has no duplicate`);
    const texts = new Set(list.map((m) => m.text));
    for (const who of ['alice', 'bob', 'carol']) {
      for (let i = 1; i <= EACH; i += 1) assert.ok(texts.has(`${who} ${i}`), `${name} has "${who} ${i}"`);
    }
  }
  assert.deepEqual(b.map((m) => m.key), a.map((m) => m.key), 'bob shows the order alice shows');
  assert.deepEqual(c.map((m) => m.key), a.map((m) => m.key), 'carol holds the order alice shows');
  // Each author's messages appear in the order they were written.
  for (const list of [a, b, c]) {
    for (const who of ['alice', 'bob', 'carol']) {
      const mine = list.filter((m) => m.text.startsWith(`${who} `)).map((m) => Number(m.text.split(' ')[1]));
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y));
    }
  }
});
