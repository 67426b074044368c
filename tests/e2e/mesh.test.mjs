// Replays the shared mesh scenarios (tests/vectors/mesh.json) against the
// web client's mesh.js; the Rust crate peerchat-mesh replays the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { DEFAULT_CONFIG, Mesh } from '../../web/js/mesh.js';

const doc = JSON.parse(readFileSync(new URL('../vectors/mesh.json', import.meta.url), 'utf8'));

test('the defaults are the documented ones', () => {
  assert.deepEqual(DEFAULT_CONFIG, doc.defaults);
});

test('the generator draws the documented numbers', () => {
  const mesh = new Mesh({}, doc.random.seed);
  assert.deepEqual(Array.from({ length: 8 }, () => mesh.rng.next()), doc.random.u32);
  assert.deepEqual([mesh.sid(), mesh.sid()], doc.random.sids);
});

for (const scenario of doc.scenarios) {
  test(scenario.name, () => {
    const mesh = new Mesh({ ...doc.defaults, ...scenario.config }, scenario.seed);
    scenario.steps.forEach((step, i) => {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const got = step.timeout ? mesh.handleTimeout(step.at) : mesh.handle(step.at, step.in);
      assert.deepEqual(got, step.want, at);
      if ('deadline' in step) assert.equal(mesh.nextDeadline(), step.deadline, `${at}: deadline`);
      if ('members' in step) assert.deepEqual(mesh.members(), step.members, `${at}: members`);
    });
  });
}
