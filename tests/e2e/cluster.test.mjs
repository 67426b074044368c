// Several servers sharing rooms through Redis, behind a small TCP load
// balancer (no sticky sessions): browsers and a terminal client spread over
// the servers chat in one room; the server some members are on is killed,
// then the server that holds the room: the members come back through the
// balancer on the others, nobody sees anyone leave, the chat goes on, and a
// newcomer sees everyone. Runs inside the loopback-only namespace, with a
// redis-server of its own on a Unix socket.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  WAIT_MS,
  launchBrowser,
  newPage,
  noticeTexts,
  openRoom,
  send,
  startServer,
  waitForMembers,
  waitForMessage,
} from './lib/harness.mjs';

/** A redis-server without persistence on a Unix socket in a fresh directory. */
async function startRedis() {
  const dir = await mkdtemp(path.join(tmpdir(), 'peerchat-redis-'));
  const socket = path.join(dir, 'redis.sock');
  const proc = spawn('redis-server', ['--port', '0', '--save', '', '--appendonly', 'no', '--unixsocket', socket, '--dir', dir], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const up = await new Promise((resolve) => {
      const c = net.connect(socket, () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `unix://${socket}`,
    async stop() {
      proc.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP load balancer on a free loopback port: each new connection goes to
 * the next live backend in turn (one that refuses is skipped).
 * @param {string[]} backends `host:port`
 */
async function startBalancer(backends) {
  let next = 0;
  const sockets = new Set();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    const attempt = (tries) => {
      if (tries === 0) return client.destroy();
      const [host, port] = backends[next++ % backends.length].split(':');
      const upstream = net.connect(Number(port), host);
      upstream.once('error', () => attempt(tries - 1));
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(backends.length);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}`,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * Opens the room link in a new page and joins once the page is connected
 * to a server. A page load whose request landed on a server as it was
 * killed fails as it would for a person, who reloads: so does this.
 * @param {import('playwright-core').Browser} browser
 * @param {string} origin
 * @param {string} link
 * @param {string} nick
 */
async function openAndJoin(browser, origin, link, nick) {
  for (let attempt = 1; ; attempt++) {
    const page = await newPage(browser, origin);
    await page.goto(link);
    await page.getByLabel('Nickname', { exact: true }).fill(nick);
    const ready = await page
      .waitForFunction(() => document.getElementById('server-status')?.dataset.state === 'open', null, { timeout: 5000 })
      .then(() => true, () => false);
    if (ready) {
      await page.getByRole('button', { name: 'Join' }).click();
      return page;
    }
    if (attempt === 3) throw new Error(`${nick}'s page never connected: ${page.logs.join('\n')}`);
    await page.context().close();
  }
}

/** @param {string} url */
async function health(url) {
  return (await fetch(`${url}/healthz`)).json();
}

/**
 * The servers with members on them, and the one that holds the room.
 * @param {{url: string}[]} servers
 */
async function placement(servers) {
  const all = await Promise.all(servers.map(async (s) => ({ server: s, health: await health(s.url) })));
  return {
    owner: all.find((h) => h.health.rooms_owned > 0)?.server,
    withClients: all.filter((h) => h.health.connections > 0).map((h) => h.server),
  };
}

test('members spread over three servers keep chatting while servers are killed', async (t) => {
  const redis = await startRedis();
  const args = ['--redis-url', redis.url, '--redis-lease', '1s'];
  const servers = [await startServer(args), await startServer(args), await startServer(args)];
  const balancer = await startBalancer(servers.map((s) => new URL(s.url).host));
  const browser = await launchBrowser();
  /** @type {LineClient[]} */
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.kill();
    await browser.close();
    balancer.close();
    for (const s of servers) await s.stop('SIGKILL');
    await redis.stop();
  });

  const alice = await openRoom(browser, balancer.url, 'alice');
  const link = alice.url();
  const bob = await openAndJoin(browser, balancer.url, link, 'bob');
  const carol = new LineClient('carol', BIN, ['chat', link, '--name', 'carol', '--plain']);
  clients.push(carol);
  await carol.waitFor((l) => l.startsWith('* joined as carol'), 'err');
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);

  // A nickname taken on another server is refused there too.
  const taken = await openAndJoin(browser, balancer.url, link, 'Alice');
  await taken.getByText(/taken/).first().waitFor();
  await taken.context().close();

  await send(alice, 'hello from alice');
  await waitForMessage(bob, 'hello from alice', 'alice');
  await carol.waitFor((l) => l === 'alice: hello from alice');

  // Kill a server with members on it that does not hold the room.
  let { owner, withClients } = await placement(servers);
  assert.ok(owner, 'one server holds the room');
  const victim = withClients.find((s) => s !== owner);
  assert.ok(victim, 'the members are spread over more than one server');
  await victim.stop('SIGKILL');
  servers.splice(servers.indexOf(victim), 1);

  await send(bob, 'bob after the first kill');
  await waitForMessage(alice, 'bob after the first kill', 'bob');
  await carol.waitFor((l) => l === 'bob: bob after the first kill');
  carol.say('carol after the first kill');
  await waitForMessage(alice, 'carol after the first kill', 'carol');
  await waitForMessage(bob, 'carol after the first kill', 'carol');
  // Everyone is back with the servers (resumed, not rejoined as new).
  const dave = await openAndJoin(browser, balancer.url, link, 'dave');
  await waitForMembers(dave, ['alice', 'bob', 'carol']);

  // Kill the server that holds the room: it moves to the last one.
  ({ owner } = await placement(servers));
  assert.ok(owner);
  await owner.stop('SIGKILL');
  servers.splice(servers.indexOf(owner), 1);
  await send(alice, 'alice after the owner died');
  for (const page of [bob, dave]) await waitForMessage(page, 'alice after the owner died', 'alice');
  await carol.waitFor((l) => l === 'alice: alice after the owner died');
  const erin = await openAndJoin(browser, balancer.url, link, 'erin');
  await waitForMembers(erin, ['alice', 'bob', 'carol', 'dave']);
  assert.equal((await health(servers[0].url)).rooms_owned, 1);

  // Nobody saw anyone leave, at any time.
  for (const page of [alice, bob, dave, erin]) {
    const left = (await noticeTexts(page)).filter((n) => / left$/.test(n));
    assert.deepEqual(left, [], `${await page.evaluate(() => document.title)}`);
  }
  assert.deepEqual(carol.err.filter((l) => / left$/.test(l)), []);
  // (A killed server shows in the console as a failed WebSocket or load.)
  for (const page of [alice, bob, dave, erin]) {
    const errors = page.errors.filter((e) => !/WebSocket|ERR_EMPTY_RESPONSE|ERR_CONNECTION/.test(String(e)));
    assert.deepEqual(errors, []);
  }
});
