// A malicious signaling server (tests/e2e/lib/proxy.mjs, in front of the
// real one) attacks the sealed signals of a room of two browsers and a
// terminal client: it flips bits, replays, redirects, and forges offers
// carrying its own DTLS fingerprint. Every attacked signal must be refused
// by its receiver, no chat may pass over a connection it tampered with, and
// each side that refused tells its user.
//
// Each attack runs PEERCHAT_TAMPER_RUNS times (2 by default; the soak,
// scripts/soak-e2e.sh, runs 100), each time in a new room, with the attacked
// sender alternating between a browser and the terminal client.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

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
  waitForMessage,
  waitForPage,
  WAIT_MS,
} from './lib/harness.mjs';
import { flipBit, forgedOffer, startProxy } from './lib/proxy.mjs';

const RUNS = Math.max(1, Number(process.env.PEERCHAT_TAMPER_RUNS ?? 2));

/** @type {{server: Awaited<ReturnType<typeof startServer>>, proxy: Awaited<ReturnType<typeof startProxy>>, browser: import('playwright-core').Browser, pages: Record<string, any>}} */
let world;

before(async () => {
  const server = await startServer();
  const proxy = await startProxy(server.url);
  const browser = await launchBrowser();
  // Alice and bob keep their browsers (and identities) from run to run.
  const pages = { alice: await newPage(browser, proxy.url), bob: await newPage(browser, proxy.url) };
  world = { server, proxy, browser, pages };
});

after(async () => {
  await world?.browser.close();
  await world?.proxy.close();
  await world?.server.stop('SIGKILL');
});

/** The refusals a page logged (one console line each), from `since` on. */
function pageRefusals(page, since) {
  return /** @type {string[]} */ (page.logs)
    .slice(since)
    .map((l) => /peerchat: a signal from .* was refused \((\w+)\)$/.exec(l)?.[1])
    .filter((c) => c !== undefined);
}

/** The refusals the terminal client logged (at debug level, one line each). */
function terminalRefusals(client) {
  return client.err
    .map((l) => /refused a signal.*code="?(\w+)/.exec(l.replace(/\x1b\[[0-9;]*m/g, ''))?.[1])
    .filter((c) => c !== undefined);
}

/**
 * A run: a new room through the malicious server, with alice and bob in
 * their browsers and dora in the terminal. `tamper` is in place before any
 * of them sends a signal.
 * @param {(ctx: {room: string, nickOf: (id: string) => string | null}) => import('./lib/proxy.mjs').Tamper | null} tamper
 */
async function openRun(tamper) {
  const { proxy, pages } = world;
  const { alice, bob } = pages;
  const since = { alice: alice.logs.length, bob: bob.logs.length };
  await alice.goto(`${proxy.url}/`);
  await alice.waitForURL(/\/r\/[A-Za-z0-9_-]{22}#[A-Za-z0-9_-]{43}$/);
  await join(alice, 'alice');
  await alice.getByRole('log').getByText('You joined as alice').waitFor();
  const link = alice.url();
  const room = new URL(link).pathname.split('/').pop() ?? '';
  const nickOf = (/** @type {string} */ id) => [...proxy.conns].find((c) => c.room === room && c.id === id)?.nick ?? null;
  proxy.tamper = tamper({ room, nickOf });
  await bob.goto(link);
  await join(bob, 'bob');
  await bob.getByRole('log').getByText('You joined as bob').waitFor();
  const dora = new LineClient('dora', BIN, ['chat', link, '--name', 'dora', '--plain'], {
    RUST_LOG: 'warn,peerchat_client=debug',
  });
  return { alice, bob, dora, room, since };
}

/** Everyone other than `sender`. */
function othersOf(sender) {
  return ['alice', 'bob', 'dora'].filter((n) => n !== sender);
}

/**
 * Resolves once `done()` holds (checked every 50 ms).
 * @param {() => boolean} done
 * @param {string | (() => string)} what what did not happen, if it does not
 */
async function until(done, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(typeof what === 'string' ? what : what());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Resolves once `who` (a page, or the terminal client) has refused at least
 * `count` signals with `code`.
 */
async function waitForRefusals(run, who, code, count) {
  const codes = () => (who === 'dora' ? terminalRefusals(run.dora) : pageRefusals(run[who], run.since[who]));
  const seen = () => codes().filter((c) => c === code).length;
  await until(() => seen() >= count, () => `${who} refused ${seen()} signals as ${code}, not ${count}: ${codes().join(', ')}`);
  return codes();
}

/**
 * `who` tells its user about a refused signal: a notice in the page's
 * conversation, a line from the terminal client.
 */
async function waitForNotice(run, who, text) {
  if (who === 'dora') {
    await run.dora.waitFor((l) => l.startsWith('* ') && l.includes(text), 'err');
  } else {
    await run[who].getByRole('log').getByText(text, { exact: false }).first().waitFor();
  }
}

/** `who` says something, in a page or the terminal. */
function say(run, who, text) {
  return who === 'dora' ? run.dora.say(text) : send(run[who], text);
}

/** Resolves once `who` shows `text` from `author`. */
async function waitForChat(run, who, text, author) {
  if (who === 'dora') await run.dora.waitFor((l) => l === `${author}: ${text}`);
  else await waitForMessage(run[who], text, author);
}

/** Whether `who` shows `text` at all. */
async function shows(run, who, text) {
  if (who === 'dora') return run.dora.out.some((l) => l.endsWith(`: ${text}`));
  return (await messageTexts(run[who])).includes(text);
}

/** Whether `who` shows `nick` as connected (its hello verified). */
async function connectedTo(run, who, nick) {
  if (who === 'dora') return run.dora.err.includes(`* ${nick} is connected`);
  return run[who].evaluate(
    (nick) =>
      [...document.querySelectorAll('[aria-label="Members"] li')].some(
        (l) => l.querySelector('.member-name')?.textContent === nick && /** @type {HTMLElement} */ (l).dataset.state === 'connected',
      ),
    nick,
  );
}

/** Resolves once `who` shows each of `nicks` as connected. */
async function waitForConnected(run, who, nicks) {
  if (who === 'dora') {
    for (const nick of nicks) await run.dora.waitFor((l) => l === `* ${nick} is connected`, 'err');
  } else {
    await waitForPage(
      run[who],
      (nicks) =>
        nicks.every((nick) =>
          [...document.querySelectorAll('[aria-label="Members"] li')].some(
            (l) => l.querySelector('.member-name')?.textContent === nick && /** @type {HTMLElement} */ (l).dataset.state === 'connected',
          ),
        ),
      nicks,
    );
  }
}

async function endRun(run) {
  world.proxy.tamper = null;
  run.dora.kill();
  await run.dora.exited;
  for (const nick of ['alice', 'bob']) assert.deepEqual(unexpectedErrors(run[nick]), [], `${nick}'s page errors`);
  assert.deepEqual(world.proxy.errors, [], 'the attacks themselves went wrong');
}

/**
 * Runs an attack that the receivers must refuse as `tampered`: every signal
 * the sender sends goes through `attack`, which counts what it delivers to
 * each member in `delivered`. The sender connects to nobody, chat from it
 * reaches nobody, the other two chat, and each receiver tells its user.
 * Resolves to how many attacked signals were checked refused.
 * @param {string} sender
 * @param {(ctx: {room: string, nickOf: (id: string) => string | null, sender: string, delivered: Record<string, number>}) => import('./lib/proxy.mjs').Tamper} attack
 * @param {string | null} [shot] a screenshot of a receiving page, named so
 * @returns {Promise<number>}
 */
async function refusedAsTampered(sender, attack, shot = null) {
  /** @type {Record<string, number>} */
  const delivered = { alice: 0, bob: 0, dora: 0 };
  const run = await openRun((ctx) => {
    const inner = attack({ ...ctx, sender, delivered });
    return (conn, frame) => (conn.room === ctx.room && conn.nick === sender ? inner(conn, frame) : null);
  });
  try {
    const [x, y] = othersOf(sender);
    // The two others connect (their signals are untouched) and chat.
    await waitForConnected(run, x, [y]);
    await waitForConnected(run, y, [x]);
    if (sender === 'dora') await run.dora.waitFor((l) => l.startsWith('* joined as dora'), 'err');
    await say(run, sender, `${sender} over a tampered connection`);
    await say(run, x, `${x} to ${y}`);
    await waitForChat(run, y, `${x} to ${y}`, x);
    // The sender signals to both (an offer, or an answer once it has the
    // other's offer): everything attacked so far reached its receiver, and
    // was refused.
    await until(() => delivered[x] > 0 && delivered[y] > 0, `the server attacked no signal to ${x} or ${y}`);
    const counts = { ...delivered };
    for (const who of [x, y]) {
      const codes = await waitForRefusals(run, who, 'tampered', counts[who]);
      assert.deepEqual(
        codes.filter((c) => c !== 'tampered'),
        [],
        `${who} refused only as tampered`,
      );
      await waitForNotice(run, who, 'altered in transit and refused');
    }
    // The sender reached nobody: no connection, no chat.
    for (const who of [x, y]) {
      assert.equal(await connectedTo(run, who, sender), false, `${who} connected to ${sender}`);
      assert.equal(await connectedTo(run, sender, who), false, `${sender} connected to ${who}`);
      assert.equal(await shows(run, who, `${sender} over a tampered connection`), false, `${who} got ${sender}'s chat`);
    }
    if (shot && x !== 'dora') await screenshot(run[x], shot);
    return counts[x] + counts[y];
  } finally {
    await endRun(run);
  }
}

/** Which sender the `r`th run attacks, alternating, starting with `first`. */
function senderOf(r, first) {
  const other = first === 'alice' ? 'dora' : 'alice';
  return r % 2 === 0 ? first : other;
}

test('a malicious server flips a bit of sealed signals: refused as tampered, told, nothing passes', async (t) => {
  let refused = 0;
  for (let r = 0; r < RUNS; r += 1) {
    refused += await refusedAsTampered(senderOf(r, 'alice'), ({ nickOf, delivered }) => {
      let count = 0;
      return (conn, frame) => {
        count += 1;
        const nick = nickOf(frame.to);
        if (nick) delivered[nick] += 1;
        const payload = flipBit(frame.payload, r * 131 + count * 17, count % 4 === 0);
        return [{ ...frame, payload }];
      };
    }, r === 0 ? 'tamper-flipped' : null);
  }
  t.diagnostic(`${RUNS} runs: ${refused} attacked signals, every one refused`);
});

test("a malicious server sends a member's signals to another member, and credits them to another sender: refused", async (t) => {
  let refused = 0;
  for (let r = 0; r < RUNS; r += 1) {
    refused += await refusedAsTampered(senderOf(r, 'dora'), ({ room, nickOf, sender, delivered }) => (conn, frame) => {
      const to = nickOf(frame.to);
      const [x, y] = othersOf(sender);
      const other = to === x ? y : x;
      const otherConn = world.proxy.member(room, other);
      const toConn = to ? world.proxy.member(room, to) : null;
      if (!to || !otherConn?.id || !toConn) return [];
      // The payload sealed for `to` goes to the other member instead…
      delivered[other] += 1;
      // …and reaches `to` too, but as if the other member had sent it.
      delivered[to] += 1;
      toConn.toMember({ type: 'signal', from: otherConn.id, payload: frame.payload });
      return [{ ...frame, to: otherConn.id }];
    }, r === 0 ? 'tamper-redirected' : null);
  }
  t.diagnostic(`${RUNS} runs: ${refused} attacked signals, every one refused`);
});

test('a malicious server swaps in offers carrying its own DTLS fingerprint: refused as tampered', async (t) => {
  let refused = 0;
  for (let r = 0; r < RUNS; r += 1) {
    refused += await refusedAsTampered(senderOf(r, 'dora'), ({ room, nickOf, delivered }) => {
      let count = 0;
      return async (conn, frame) => {
        const nick = nickOf(frame.to);
        if (!nick || !conn.id) return [];
        count += 1;
        delivered[nick] += 1;
        // It cannot read the real signal: it drops it and sends its own
        // offer, sealed with a secret of its own, or for another room, or
        // not sealed at all.
        return [{ ...frame, payload: await forgedOffer(r + count, room, conn.id, frame.to) }];
      };
    }, r === 0 ? 'tamper-forged' : null);
  }
  t.diagnostic(`${RUNS} runs: ${refused} attacked signals, every one refused`);
});

test('a malicious server replays earlier signals, of this session and of an earlier one: refused, the connection stays up', async (t) => {
  let refused = 0;
  for (let r = 0; r < RUNS; r += 1) {
    const sender = senderOf(r, 'alice');
    const run = await openRun(() => null);
    try {
      const [x, y] = othersOf(sender);
      for (const who of ['alice', 'bob', 'dora']) await waitForConnected(run, who, othersOf(who));
      await say(run, sender, 'before the replay');
      await waitForChat(run, x, 'before the replay', sender);
      await waitForChat(run, y, 'before the replay', sender);
      const conn = world.proxy.member(run.room, sender);
      assert.ok(conn?.id, `${sender} is in the room`);
      /** @type {Record<string, number>} */
      const replayed = { alice: 0, bob: 0, dora: 0 };
      const nickOf = (/** @type {string} */ id) => [...world.proxy.conns].find((c) => c.room === run.room && c.id === id)?.nick;
      for (const { to, payload } of [...conn.signals]) {
        const nick = nickOf(to);
        if (!nick) continue;
        replayed[nick] += 1;
        conn.toServer({ type: 'signal', to, payload });
      }
      for (const who of [x, y]) {
        assert.ok(replayed[who] > 0, `nothing to replay to ${who}`);
        await waitForRefusals(run, who, 'replayed', replayed[who]);
        await waitForNotice(run, who, `earlier signal from ${sender} was replayed and refused`);
        refused += replayed[who];
      }
      // Nothing changed: the connections are up, chat goes on.
      await say(run, sender, 'after the replay');
      await waitForChat(run, x, 'after the replay', sender);
      await waitForChat(run, y, 'after the replay', sender);
      for (const who of [x, y]) assert.equal(await connectedTo(run, who, sender), true);

      if (sender === 'alice') {
        // Alice reloads (a new session of hers, under the same id); the
        // server replays her earlier session's signals on the new one.
        const old = [...conn.signals];
        await run.alice.reload();
        await waitForConnected(run, 'alice', ['bob', 'dora']);
        const again = world.proxy.member(run.room, 'alice');
        assert.ok(again && again !== conn && again.id === conn.id, 'alice is back under her id');
        const stale = { bob: 0, dora: 0 };
        for (const { to, payload } of old) {
          const nick = nickOf(to);
          if (nick !== 'bob' && nick !== 'dora') continue;
          stale[nick] += 1;
          again.toServer({ type: 'signal', to, payload });
        }
        for (const who of /** @type {const} */ (['bob', 'dora'])) {
          assert.ok(stale[who] > 0, `nothing to replay to ${who}`);
          await waitForRefusals(run, who, 'stale', stale[who]);
          refused += stale[who];
        }
        await say(run, 'alice', 'after the stale replay');
        await waitForChat(run, 'bob', 'after the stale replay', 'alice');
        await waitForChat(run, 'dora', 'after the stale replay', 'alice');
      }
    } finally {
      await endRun(run);
    }
  }
  t.diagnostic(`${RUNS} runs: ${refused} replayed signals, every one refused`);
});
