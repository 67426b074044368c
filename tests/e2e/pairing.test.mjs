// Two peers without a room: connection codes passed by hand (here, by the
// test) with no server at all, and pairing through the server's mailbox.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import { BIN, startServer } from './lib/harness.mjs';

const code = (client) => client.out.find((l) => l.startsWith('peerchat1.'));

test('two terminal clients connect by exchanging codes, with no server', async (t) => {
  const clients = [];
  t.after(() => clients.forEach((c) => c.kill()));
  const alice = new LineClient('alice', BIN, ['chat', '--manual', '--name', 'alice']);
  const bob = new LineClient('bob', BIN, ['chat', '--manual', '--answer', '--name', 'bob']);
  clients.push(alice, bob);

  await alice.waitFor((l) => l.startsWith('peerchat1.'));
  bob.say(code(alice));
  await bob.waitFor((l) => l.startsWith('peerchat1.'));
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
  bob.say('peerchat1.not-a-real-code');
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
  const args = (nick) => ['chat', '--mailbox', 'pairing-test', '--server', server.url, '--name', nick];
  const alice = new LineClient('alice', BIN, args('alice'));
  clients.push(alice);
  await alice.waitFor((l) => l.startsWith('* joined as alice'), 'err');
  const bob = new LineClient('bob', BIN, args('bob'));
  clients.push(bob);
  await alice.waitFor((l) => l === '* bob is connected', 'err');
  await bob.waitFor((l) => l === '* alice is connected', 'err');
  alice.say('found you through the mailbox');
  await bob.waitFor((l) => l === 'alice: found you through the mailbox');
  bob.say('likewise');
  await alice.waitFor((l) => l === 'bob: likewise');
});
