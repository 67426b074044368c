// The PeerJS server protocol, message by message: the shared scenarios of
// tests/vectors/peerjs.json (also replayed by crates/peerjs with simulated
// time) against peer 1.0.2 from npm, the reference, and against
// `peerchat serve --peerjs`, each scenario on fresh servers. The answers
// must be the same, up to timing, except in the steps a scenario marks as
// one server's own (its `differs` says why).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import { ROOT, startServer } from './lib/harness.mjs';
import { connectRaw, startReference } from './lib/peerjs.mjs';

const doc = JSON.parse(await readFile(path.join(ROOT, 'tests', 'vectors', 'peerjs.json'), 'utf8'));
const only = process.env.PEERJS_SERVER; // `peer` or `peerchat`: run against one only

/** The servers, started afresh for each scenario with its settings. */
const servers = {
  peer: (/** @type {any} */ config) => startReference(config),
  peerchat: (/** @type {any} */ config) =>
    startServer([
      '--no-turn',
      '--peerjs',
      '--peerjs-key', config.key,
      '--peerjs-expire-timeout', `${config.expire_timeout_ms}ms`,
      '--peerjs-alive-timeout', `${config.alive_timeout_ms}ms`,
      '--peerjs-concurrent-limit', String(config.concurrent_limit),
    ]),
};

/**
 * Runs one scenario against one server.
 * @param {any} scenario
 * @param {'peer' | 'peerchat'} kind
 */
async function run(scenario, kind) {
  const server = await servers[kind]({ ...doc.config, ...scenario.config });
  /** @type {Record<string, Awaited<ReturnType<typeof connectRaw>>>} */
  const conns = {};
  try {
    for (const [i, step] of scenario.steps.entries()) {
      if (step.server && step.server !== kind) continue;
      const at = `${kind}, step ${i}: ${JSON.stringify(step)}`;
      if (step.connect) {
        conns[step.connect] = await connectRaw(server.url, step.query);
      } else if (step.send) {
        conns[step.send].send(step.text ?? JSON.stringify(step.message));
      } else if (step.close) {
        conns[step.close].close();
      } else if (step.expect) {
        const got = await conns[step.expect].next();
        assert.deepEqual(got.message, step.message, `${at}\ngot ${JSON.stringify(got)}`);
        assert.equal(got.binary, false, `${at}: a text frame`);
      } else if (step.expect_closed) {
        const got = await conns[step.expect_closed].next();
        assert.equal(got.closed, true, `${at}\ngot ${JSON.stringify(got)}`);
      } else {
        throw new Error(`${at}: unknown step`);
      }
    }
  } finally {
    for (const conn of Object.values(conns)) conn.close();
    await server.stop();
  }
}

for (const scenario of doc.scenarios) {
  const kinds = /** @type {const} */ (['peer', 'peerchat']).filter((k) => !only || k === only);
  // Both servers at once: the scenarios that wait for a timeout take it once.
  test(scenario.name, () => Promise.all(kinds.map((kind) => run(scenario, kind))));
}
