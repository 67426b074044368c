// Checks the shared transfer vectors (tests/vectors/transfer.json) against
// the web client's transfer.js: hashes, piece sizes, plain names, media
// types, offers, transfer-channel messages, and the two machines step by
// step. The Rust crate peerchat-transfer checks the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { fileBody, parseFileMeta } from '../../web/js/protocol.js';
import {
  controlJson,
  digestBlob,
  encodeData,
  FileHasher,
  hex,
  numbered,
  offerOf,
  parseControl,
  parseData,
  pieceSizeFor,
  Receiver,
  sanitize,
  Sender,
  sniff,
} from '../../web/js/transfer.js';

const doc = JSON.parse(readFileSync(new URL('../vectors/transfer.json', import.meta.url), 'utf8'));

/** @param {number} size @param {number} salt */
function content(size, salt) {
  const out = new Uint8Array(size);
  for (let k = 0; k < size; k += 1) out[k] = Math.imul(k + salt, 0x9e3779b1) >>> 24;
  return out;
}

/** @param {string} text */
function unhex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {{size: number, salt: number, piece: number}} spec */
function file(spec) {
  const data = content(spec.size, spec.salt);
  const hasher = new FileHasher(spec.piece);
  hasher.update(data);
  const digests = hasher.finish();
  return { data, meta: offerOf(digests, { fid: 'f1', name: 'data.bin', type: 'application/octet-stream' }), list: digests.pieces };
}

/** snake_case configuration names to the JS ones */
/** @param {Record<string, unknown>} c */
function camel(c) {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k.replace(/_([a-z])/g, (_, x) => x.toUpperCase()), v]));
}

test('hashes', () => {
  for (const c of doc.hashes) {
    const data = content(c.size, c.salt);
    const hasher = new FileHasher(c.piece);
    for (let at = 0; at < data.length; at += 1000) hasher.update(data.subarray(at, at + 1000));
    const d = hasher.finish();
    assert.equal(hex(d.sha256), c.sha256);
    assert.equal(hex(d.root), c.root);
    assert.deepEqual(d.pieces.map(hex), c.pieces);
  }
});

test('a blob is hashed piece by piece, with its media type', async () => {
  const data = content(300_000, 4);
  data.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const { digests, type } = await digestBlob(new Blob([data]));
  const whole = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  assert.equal(hex(digests.sha256), hex(whole));
  assert.equal(digests.piece, 256 * 1024);
  assert.equal(digests.pieces.length, 2);
  assert.equal(type, 'image/png');
});

test('piece sizes', () => {
  for (const c of doc.piece_sizes) assert.equal(pieceSizeFor(c.size), c.piece, JSON.stringify(c));
});

test('plain names and numbering', () => {
  for (const c of doc.names) assert.equal(sanitize(c.in), c.out, JSON.stringify(c));
  for (const c of doc.numbered) assert.equal(numbered(c.name, c.n), c.out, JSON.stringify(c));
  assert.equal(sanitize('lone \ud800 surrogate'), 'lone \ufffd surrogate');
});

test('media types by content', () => {
  for (const c of doc.sniff) assert.equal(sniff(unhex(c.hex)), c.type, JSON.stringify(c));
});

test('offers', () => {
  for (const c of doc.offers) {
    if ('body' in c) assert.equal(fileBody(parseFileMeta(c.file)), c.body);
    else assert.throws(() => parseFileMeta(c.file), (e) => /** @type {any} */ (e).field === c.error, JSON.stringify(c));
  }
});

test('transfer-channel messages', () => {
  for (const c of doc.control) {
    if (c.error) {
      assert.throws(() => parseControl(c.text), JSON.stringify(c));
      continue;
    }
    const m = parseControl(c.text);
    const got = {
      get: () => ({ get: { fid: m.fid, sha256: m.sha256, list: m.list } }),
      have: () => ({ have: m.pieces }),
      want: () => ({ want: m.pieces }),
      cancel: () => ({ cancel: m.reason }),
      unknown: () => ({ unknown: null }),
    }[m.type]();
    assert.deepEqual(got, c.ok, JSON.stringify(c));
    if (m.type !== 'unknown') assert.deepEqual(parseControl(controlJson(m)), m);
  }
  for (const c of doc.data) {
    const bytes = unhex(c.hex);
    if (c.error) {
      assert.throws(() => parseData(bytes), JSON.stringify(c).slice(0, 200));
      continue;
    }
    const d = parseData(bytes);
    const got = d.kind === 'piece' ? { piece: { index: d.index, offset: d.offset, hex: hex(d.bytes) } } : { list: { first: d.first, hex: hex(d.hashes) } };
    assert.deepEqual(got, c.ok);
    assert.deepEqual(encodeData(d), bytes);
  }
});

for (const scenario of doc.receiver_scenarios) {
  test(`receiver: ${scenario.name}`, () => {
    const f = file(scenario.file);
    const disk = new Uint8Array(f.data.length);
    if (Array.isArray(scenario.disk)) for (const [a, b] of scenario.disk) disk.set(f.data.subarray(a, b), a);
    const r = new Receiver(f.meta, scenario.author, camel({ ...doc.receiver_defaults, ...scenario.config }), scenario.saved);
    scenario.steps.forEach((step, i) => {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const [kind, arg] = step.in ? Object.entries(step.in)[0] : ['timeout', null];
      const now = step.at;
      /** @type {import('../../web/js/transfer.js').ReceiverAction[]} */
      let actions;
      switch (kind) {
        case 'start': actions = r.start(now); break;
        case 'accept': actions = r.accept(now); break;
        case 'cancel': actions = r.cancel(now); break;
        case 'peer_up': actions = r.peerUp(arg, now); break;
        case 'peer_down': actions = r.peerDown(arg, now); break;
        case 'opened': actions = r.opened(arg, now); break;
        case 'closed': actions = r.closed(arg, now); break;
        case 'text': actions = r.text(arg.from, arg.text, now); break;
        case 'list': {
          const hashes = new Uint8Array(arg.count * 32);
          for (let k = 0; k < arg.count; k += 1) hashes.set(f.list[arg.first + k], k * 32);
          if (arg.corrupt) hashes[0] ^= 1;
          actions = r.binary(arg.from, encodeData({ kind: 'list', first: arg.first, hashes }), now);
          break;
        }
        case 'piece': {
          const start = arg.index * f.meta.piece + arg.offset;
          const bytes = f.data.slice(start, start + arg.len);
          if (arg.corrupt) bytes[0] ^= 1;
          actions = r.binary(arg.from, encodeData({ kind: 'piece', index: arg.index, offset: arg.offset, bytes }), now);
          break;
        }
        case 'raw': actions = r.binary(arg.from, unhex(arg.hex), now); break;
        case 'written': actions = r.written(arg, now); break;
        case 'read': actions = r.read(arg.offset, disk.slice(arg.offset, arg.offset + arg.len), now); break;
        case 'corrupt_disk': disk[arg] ^= 1; actions = []; break;
        case 'timeout': actions = r.handleTimeout(now); break;
        default: assert.fail(`${at}: unknown input ${kind}`);
      }
      const got = actions.map((a) => {
        if ('write' in a) {
          disk.set(a.write.data, a.write.offset);
          return { write: { offset: a.write.offset, len: a.write.data.length } };
        }
        return a;
      });
      assert.deepEqual(got, step.want, at);
      if ('deadline' in step) assert.equal(r.nextDeadline(), step.deadline, `${at}: deadline`);
      if ('progress' in step) assert.equal(r.progress().bytes, step.progress, `${at}: progress`);
      if ('saved' in step) assert.deepEqual(r.saved(), step.saved, `${at}: saved`);
      if (step.disk === true) assert.deepEqual(disk, f.data, `${at}: the file on disk`);
    });
  });
}

for (const scenario of doc.sender_scenarios) {
  test(`sender: ${scenario.name}`, () => {
    const f = file(scenario.file);
    const config = camel({ ...doc.sender_defaults, ...scenario.config });
    /** @type {Sender | null} */
    let sender = null;
    scenario.steps.forEach((step, i) => {
      const at = `step ${i}: ${JSON.stringify(step).slice(0, 300)}`;
      const [kind, arg] = step.in ? Object.entries(step.in)[0] : ['timeout', null];
      const now = step.at;
      /** @type {import('../../web/js/transfer.js').SenderAction[]} */
      let actions;
      if (kind === 'create') {
        const created = Sender.create(f.meta, f.list, arg.list === true, config, now);
        sender = created.sender;
        actions = created.actions;
      } else {
        assert.ok(sender, at);
        switch (kind) {
          case 'text': actions = sender.text(arg, now); break;
          case 'read': {
            let bytes = f.data.slice(arg.offset, arg.offset + arg.len);
            if (arg.corrupt) bytes[0] ^= 1;
            if ('short' in arg) bytes = bytes.slice(0, arg.short);
            actions = sender.read(arg.offset, bytes, now);
            break;
          }
          case 'buffered': actions = sender.buffered(arg, now); break;
          case 'cancel': actions = sender.cancel(now); break;
          case 'closed': actions = sender.closed(now); break;
          case 'timeout': actions = sender.handleTimeout(now); break;
          default: assert.fail(`${at}: unknown input ${kind}`);
        }
      }
      const got = actions.map((a) => {
        if (!('send_binary' in a)) return a;
        const d = parseData(a.send_binary);
        if (d.kind === 'piece') {
          const start = d.index * f.meta.piece + d.offset;
          assert.deepEqual(d.bytes, f.data.slice(start, start + d.bytes.length), `${at}: the file's bytes`);
          return { send_piece: { index: d.index, offset: d.offset, len: d.bytes.length } };
        }
        const count = d.hashes.length / 32;
        for (let k = 0; k < count; k += 1) assert.deepEqual(d.hashes.subarray(k * 32, k * 32 + 32), f.list[d.first + k]);
        return { send_list: { first: d.first, count } };
      });
      assert.deepEqual(got, step.want, at);
      const s = /** @type {Sender} */ (sender);
      if ('deadline' in step) assert.equal(s.nextDeadline(), step.deadline, `${at}: deadline`);
      if ('delivered' in step) assert.equal(s.delivered(), step.delivered, `${at}: delivered`);
    });
  });
}
