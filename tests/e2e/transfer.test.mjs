// Checks the shared transfer vectors (tests/vectors/transfer.json) against
// the web client's transfer.js: hashes, piece sizes, plain names, media
// types, offers, transfer-channel messages, and the two machines step by
// step. The Rust crate peerchat-transfer checks the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { fileBody, parseFileMeta } from '../../web/js/protocol.js';
import { sha256 as nobleSha256 } from '../../web/vendor/noble-hashes/sha2.js';
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
  PieceParts,
  pieceSizeFor,
  Receiver,
  sanitize,
  Sender,
  sha256,
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
      get: () => ({ get: { fid: m.fid, sha256: m.sha256, list: m.list, ...(m.chunk === undefined ? {} : { chunk: m.chunk }) } }),
      have: () => ({ have: m.pieces, ...(m.chunk === undefined ? {} : { chunk: m.chunk }) }),
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

// Each receiver scenario twice: the machine hashing pieces, and its caller
// hashing them (as the page does with WebCrypto), with the same outcome.
for (const scenario of doc.receiver_scenarios) for (const native of [false, true]) {
  test(`receiver${native ? ' (caller hashes pieces)' : ''}: ${scenario.name}`, () => {
    const f = file(scenario.file);
    const disk = new Uint8Array(f.data.length);
    if (Array.isArray(scenario.disk)) for (const [a, b] of scenario.disk) disk.set(f.data.subarray(a, b), a);
    const config = camel({ ...doc.receiver_defaults, ...scenario.config });
    const r = new Receiver(f.meta, scenario.author, native ? { ...config, nativeDigests: true } : config, scenario.saved);
    const whole = nobleSha256.create();
    let fed = 0;
    /** @type {Map<string, PieceParts>} one per channel, as in the page */
    const parts = new Map();
    /** @param {string} from @param {Uint8Array} message */
    const binary = (from, message, now) => {
      if (!native) return r.binary(from, message, now);
      if (!parts.has(from)) parts.set(from, new PieceParts(f.meta));
      const piece = /** @type {PieceParts} */ (parts.get(from)).add(message);
      return r.binary(from, message, now, piece ? sha256(piece) : undefined);
    };
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
        case 'opened': parts.delete(arg); actions = r.opened(arg, now); break;
        case 'closed': actions = r.closed(arg, now); break;
        case 'text': actions = r.text(arg.from, arg.text, now); break;
        case 'list': {
          const hashes = new Uint8Array(arg.count * 32);
          for (let k = 0; k < arg.count; k += 1) hashes.set(f.list[arg.first + k], k * 32);
          if (arg.corrupt) hashes[0] ^= 1;
          actions = binary(arg.from, encodeData({ kind: 'list', first: arg.first, hashes }), now);
          break;
        }
        case 'piece': {
          const start = arg.index * f.meta.piece + arg.offset;
          const bytes = f.data.slice(start, start + arg.len);
          if (arg.corrupt) bytes[0] ^= 1;
          actions = binary(arg.from, encodeData({ kind: 'piece', index: arg.index, offset: arg.offset, bytes }), now);
          break;
        }
        case 'raw': actions = binary(arg.from, unhex(arg.hex), now); break;
        case 'written': actions = r.written(arg, now); break;
        case 'read': actions = r.read(arg.offset, disk.slice(arg.offset, arg.offset + arg.len), now); break;
        case 'corrupt_disk': disk[arg] ^= 1; actions = []; break;
        case 'timeout': actions = r.handleTimeout(now); break;
        default: assert.fail(`${at}: unknown input ${kind}`);
      }
      /** @type {unknown[]} */
      const got = [];
      for (const a of actions) {
        if ('write' in a) {
          disk.set(a.write.data, a.write.offset);
          got.push({ write: { offset: a.write.offset, len: a.write.data.length } });
        } else if ('whole' in a) {
          // What the page's worker does: hash the file as written, in order.
          assert.equal(a.whole.offset, fed, `${at}: the whole file is fed in order`);
          whole.update(disk.subarray(a.whole.offset, a.whole.offset + a.whole.len));
          fed += a.whole.len;
        } else if ('whole_digest' in a) {
          assert.equal(fed, f.data.length, `${at}: the whole file was fed`);
          got.push(...r.wholeDigest(hex(whole.digest()), now));
        } else {
          got.push(a);
        }
      }
      assert.deepEqual(got, step.want, at);
      if ('deadline' in step) assert.equal(r.nextDeadline(), step.deadline, `${at}: deadline`);
      if ('progress' in step) assert.equal(r.progress().bytes, step.progress, `${at}: progress`);
      if ('saved' in step) assert.deepEqual(r.saved(), step.saved, `${at}: saved`);
      if (step.disk === true) assert.deepEqual(disk, f.data, `${at}: the file on disk`);
    });
  });
}

// Each sender scenario twice: the machine hashing what it reads, and its
// caller passing each read's SHA-256 (as the page does with WebCrypto).
for (const scenario of doc.sender_scenarios) for (const native of [false, true]) {
  test(`sender${native ? ' (caller hashes reads)' : ''}: ${scenario.name}`, () => {
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
        const created = Sender.create(f.meta, f.list, arg.list === true, arg.chunk, config, now);
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
            actions = sender.read(arg.offset, bytes, now, native ? sha256(bytes) : undefined);
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

/**
 * A fetcher wired to holders in memory, in simulated time (the JavaScript
 * side of crates/transfer/tests/pair.rs): the file arrives whole through
 * blips, bad pieces, a reload and several holders.
 * @param {{size: number, holders: string[], config?: object, blipAt?: number[], corrupt?: number[], reloadAt?: number}} o
 */
function pair({ size, holders, config = {}, blipAt = [], corrupt = [], reloadAt }) {
  const data = content(size, 7);
  const hasher = new FileHasher(32 * 1024);
  hasher.update(data);
  const digests = hasher.finish();
  const meta = offerOf(digests, { fid: 'f1', name: 'x.bin', type: 'application/octet-stream' });
  let r = new Receiver(meta, holders[0], config);
  const disk = new Uint8Array(size);
  /** @type {Map<string, Sender>} */
  const senders = new Map();
  /** @type {[string, string | Uint8Array][]} */
  const wire = [];
  let now = 0;
  let pieces = 0;
  let reads = 0;
  /** @param {string} peer @param {import('../../web/js/transfer.js').SenderAction[]} actions */
  const runSender = (peer, actions) => {
    while (actions.length > 0) {
      const a = /** @type {any} */ (actions.shift());
      const s = senders.get(peer);
      if (!s) return;
      if ('send_text' in a) wire.push([peer, a.send_text]);
      else if ('send_binary' in a) {
        const bytes = a.send_binary.slice();
        if (bytes[0] === 1) {
          pieces += 1;
          if (corrupt.includes(pieces)) bytes[bytes.length - 1] ^= 0xff;
        }
        wire.push([peer, bytes]);
        actions.push(...s.buffered(0, now));
      } else if ('read' in a) actions.push(...s.read(a.read.offset, data.slice(a.read.offset, a.read.offset + a.read.len), now));
      else if ('close' in a) senders.delete(peer);
    }
  };
  /** @param {import('../../web/js/transfer.js').ReceiverAction[]} actions */
  const run = (actions) => {
    while (actions.length > 0) {
      const a = /** @type {any} */ (actions.shift());
      if ('open' in a) actions.push(...(holders.includes(a.open) ? r.opened(a.open, now) : r.closed(a.open, now)));
      else if ('send' in a) {
        const s = senders.get(a.send.to);
        if (s) runSender(a.send.to, s.text(a.send.text, now));
        else {
          const get = parseControl(a.send.text);
          assert.equal(get.type, 'get');
          const created = Sender.create(meta, digests.pieces, get.type === 'get' && get.list, get.type === 'get' ? get.chunk : undefined, {}, now);
          senders.set(a.send.to, created.sender);
          runSender(a.send.to, created.actions);
        }
      } else if ('close' in a) {
        senders.delete(a.close);
        for (let i = wire.length - 1; i >= 0; i -= 1) if (wire[i][0] === a.close) wire.splice(i, 1);
      } else if ('write' in a) {
        disk.set(a.write.data, a.write.offset);
        actions.push(...r.written(a.write.data.length, now));
      } else if ('read' in a) {
        reads += 1;
        actions.push(...r.read(a.read.offset, disk.slice(a.read.offset, a.read.offset + a.read.len), now));
      }
    }
  };
  const up = () => {
    run(r.start(now));
    for (const h of holders) run(r.peerUp(h, now));
  };
  up();
  for (let step = 0; step < 100_000 && r.state !== 'complete'; step += 1) {
    const bytes = r.progress().bytes;
    if (blipAt.length > 0 && bytes >= blipAt[0]) {
      blipAt.shift();
      for (const h of holders) {
        senders.delete(h);
        run(r.peerDown(h, now));
      }
      wire.length = 0;
      now += 3000;
      for (const h of holders) run(r.peerUp(h, now));
      continue;
    }
    if (reloadAt !== undefined && bytes >= reloadAt) {
      reloadAt = undefined;
      r = new Receiver(meta, holders[0], config, r.saved());
      senders.clear();
      wire.length = 0;
      up();
      continue;
    }
    const next = wire.shift();
    if (!next) {
      now += 1000;
      run(r.handleTimeout(now));
      continue;
    }
    const [from, message] = next;
    run(typeof message === 'string' ? r.text(from, message, now) : r.binary(from, message, now));
  }
  assert.equal(r.state, 'complete');
  assert.deepEqual(disk, data);
  return { reads };
}

test('a fetcher and its holders in memory: blips, bad pieces, a reload, two holders', () => {
  for (const size of [0, 1, 16_383, 16_384, 16_385, 32_767, 32_768, 32_769, 200_000]) assert.equal(pair({ size, holders: ['a'] }).reads, 0);
  pair({ size: 300_000, holders: ['a'], blipAt: [50_000, 200_000], corrupt: [2, 7] });
  assert.ok(pair({ size: 300_000, holders: ['a'], reloadAt: 150_000 }).reads > 0);
  pair({ size: 500_000, holders: ['a', 'c'], config: { maxSources: 2, window: 64 * 1024 } });
});
