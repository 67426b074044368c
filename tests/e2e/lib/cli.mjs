// Line-mode chat processes (peerchat chat, or the independent aiortc
// peer) driven through their standard input and output.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import { WAIT_MS } from './harness.mjs';

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
