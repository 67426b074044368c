// Export and search of the history kept on a device (web/js/archive.js)
// replay tests/vectors/archive.json, as the terminal client does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { exportJson, exportText, search, stamp } from '../../web/js/archive.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/archive.json', import.meta.url), 'utf8'));

test('the plain-text export is as the vectors write it', () => {
  assert.equal(exportText(vectors.room, vectors.messages, () => vectors.offset_minutes), vectors.text);
  assert.equal(stamp(0, -330), '1969-12-31 18:30:00 -05:30');
});

test('the JSON export is as the vectors write it', () => {
  assert.deepEqual(JSON.parse(exportJson(vectors.room, vectors.messages, vectors.exported_at)), vectors.json);
});

test('search finds messages holding every word, ignoring case and accents, newest first', () => {
  for (const { query, found } of vectors.searches) {
    assert.deepEqual(search(vectors.messages, query).map((m) => m.id), found, query);
  }
  assert.deepEqual(search(vectors.messages, 'deploy', 1).map((m) => m.id), ['m3']);
});
