// Line-mode chat processes (peerchat chat, or the independent aiortc
// peer) driven through their standard input and output.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { BIN, WAIT_MS } from './harness.mjs';

/**
 * A scratch directory and `client`, which starts a `peerchat chat` in line
 * mode with `args` and, for each name, an identity file and a download
 * directory of its own in that directory; the clients and the directory
 * are gone after the test.
 * @param {import('node:test').TestContext} t
 * @param {string} prefix the scratch directory's name starts so
 */
export function terminalClients(t, prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  /** @type {LineClient[]} */
  const clients = [];
  t.after(() => {
    for (const c of clients) c.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  /**
   * @param {string} name
   * @param {string[]} args
   */
  const client = (name, args) => {
    const c = new LineClient(name, BIN, [
      'chat',
      ...args,
      '--name',
      name,
      '--identity-file',
      path.join(dir, `${name}.key`),
      '--download-dir',
      path.join(dir, `${name} downloads`),
    ]);
    clients.push(c);
    return c;
  };
  return { dir, client };
}

/**
 * A line of `--json` output as its event, or null for a line that is not
 * JSON.
 * @param {string} line
 */
export function json(line) {
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}

export class LineClient {
  /**
   * @param {string} name for messages
   * @param {string} command
   * @param {string[]} args
   * @param {Record<string, string>} [env] more environment variables
   */
  constructor(name, command, args, env = {}) {
    this.name = name;
    this.proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    /** @type {string[]} */
    this.out = [];
    /** @type {string[]} */
    this.err = [];
    /** @type {Array<() => void>} */
    this.waiters = [];
    const collect = (stream, lines) =>
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        for (const w of this.waiters.splice(0)) w();
      });
    collect(this.proc.stdout, this.out);
    collect(this.proc.stderr, this.err);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
  }

  /**
   * Resolves once a line of stdout (or stderr) satisfies `test`.
   * @param {(line: string) => boolean} test
   * @param {'out' | 'err'} stream
   */
  async waitFor(test, stream = 'out') {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const lines = stream === 'out' ? this.out : this.err;
      if (lines.some(test)) return;
      if (this.proc.exitCode !== null) throw new Error(`${this.name} exited: ${this.err.join('\n')}`);
      if (Date.now() > deadline) {
        throw new Error(`${this.name}: timed out; stdout:\n${this.out.join('\n')}\nstderr:\n${this.err.join('\n')}`);
      }
      await new Promise((resolve) => {
        this.waiters.push(() => resolve(undefined));
        setTimeout(resolve, 500).unref();
      });
    }
  }

  /** @param {string} text */
  say(text) {
    this.proc.stdin.write(`${text}\n`);
  }

  /** Ends standard input; resolves with the exit code. */
  async finish() {
    this.proc.stdin.end();
    return this.exited;
  }

  kill() {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
