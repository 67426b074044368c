// A network namespace for clients, next to the one the tests run in
// (scripts/netns.sh's), linked to it by a veth pair: the server listens on
// SERVER_IP in the tests' namespace, clients run in the other at
// CLIENT_IP. Its firewall (nftables) drops UDP, so clients can reach the
// server's relay only over TCP or TLS; relayed traffic between relay
// addresses stays in the server's namespace. Nothing outside the
// namespaces that the test suite made is touched.
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SERVER_IP = '10.99.0.1';
export const CLIENT_IP = '10.99.0.2';

/** A TCP port free right now on `host`. */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject).listen(0, host, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address());
      probe.close(() => resolve(port));
    });
  });
}

/** Makes the clients' namespace. */
export async function clientNamespace() {
  // A process that holds the namespace open for as long as it runs.
  const holder = spawn('unshare', ['-n', 'sleep', 'infinity'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => {
    holder.once('spawn', resolve);
    holder.once('error', reject);
  });
  const pid = String(holder.pid);
  const netns = `/proc/${pid}/ns/net`;
  /** Runs a command in the clients' namespace. */
  const inside = (/** @type {string[]} */ argv) => run('nsenter', [`--net=${netns}`, ...argv]);
  const veth = `pc${pid}`;
  // unshare needs a moment to enter its namespace: wait until it has.
  const own = await run('readlink', ['/proc/self/ns/net']);
  for (let i = 0; ; i += 1) {
    const theirs = await run('readlink', [netns]).catch(() => ({ stdout: own.stdout }));
    if (theirs.stdout !== own.stdout) break;
    if (i > 100) throw new Error('the clients\' namespace did not come up');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pid]);
  // No IPv6 link-local addresses: the kernel would add them a moment
  // after the links come up, and Chromium, seeing an address appear, fails
  // the requests it has in flight with ERR_NETWORK_CHANGED.
  await run('ip', ['link', 'set', veth, 'addrgenmode', 'none']);
  await inside(['ip', 'link', 'set', 'eth0', 'addrgenmode', 'none']);
  await run('ip', ['addr', 'add', `${SERVER_IP}/24`, 'dev', veth]);
  await run('ip', ['link', 'set', veth, 'up']);
  await inside(['ip', 'link', 'set', 'lo', 'up']);
  await inside(['ip', 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0']);
  await inside(['ip', 'link', 'set', 'eth0', 'up']);
  // UDP only on loopback (from or to 127/8, as between the terminal
  // client's WebRTC stack and its own TCP bridge); none between clients'
  // host addresses, none to the server.
  const rules = [
    'table inet udpblock {',
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    '    meta l4proto udp ip saddr != 127.0.0.0/8 ip daddr != 127.0.0.0/8 drop',
    '    meta l4proto udp ip6 saddr != ::1 ip6 daddr != ::1 drop',
    '  }',
    '}',
  ].join('\n');
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'peerchat-nft-')), 'rules.nft');
  await writeFile(file, `${rules}\n`);
  await inside(['nft', '-f', file]);

  // Chromium started inside the namespace (Playwright talks to it over
  // pipes, which cross namespaces).
  const chromium = path.join(path.dirname(file), 'chromium');
  await writeFile(chromium, `#!/bin/sh\nexec nsenter --net=${netns} ${process.env.CHROMIUM ?? '/usr/bin/chromium'} "$@"\n`);
  await chmod(chromium, 0o755);
  return {
    netns,
    /** An executable that runs Chromium in the namespace. */
    chromium,
    /** `command args` run in the namespace: an argv for spawn. */
    wrap: (/** @type {string} */ command, /** @type {string[]} */ args) => ['nsenter', [`--net=${netns}`, command, ...args]],
    /**
     * Drops TCP to this port of the server too (to leave TLS as the only
     * way to a relay).
     * @param {number} port
     */
    async blockTcp(port) {
      await inside(['nft', 'add', 'rule', 'inet', 'udpblock', 'output', 'ip', 'daddr', SERVER_IP, 'tcp', 'dport', String(port), 'drop']);
    },
    /** Removes the namespace and its link. */
    async close() {
      holder.kill('SIGKILL');
      await run('ip', ['link', 'del', veth]).catch(() => {});
    },
  };
}
