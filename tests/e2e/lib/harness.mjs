// Shared helpers for the browser tests: a real peerchat server process and
// a real headless Chromium.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { parseSecret, roomContext, SignalKey } from '../../../web/js/e2e.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SCREENSHOTS = path.join(ROOT, 'target', 'screenshots');
export const BIN = process.env.PEERCHAT_BIN ?? path.join(ROOT, 'target', 'debug', 'peerchat');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Upper bound for any single wait in these tests. */
export const WAIT_MS = 20_000;

/**
 * Starts `peerchat serve` on a free loopback port and resolves once it
 * prints its URL.
 * @param {string[]} [args]
 * @param {{logLevel?: string}} [options] logLevel: RUST_LOG for the server
 */
export async function startServer(args = [], options = {}) {
  return startServerOn('127.0.0.1:0', args, options);
}

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
];

/**
 * A fresh headless Chromium (Playwright gives it a new, empty profile).
 * @param {string[]} [extraArgs] more command-line flags
 * @param {{executablePath?: string, loopback?: boolean}} [options] another
 *   executable (one that starts Chromium in another network namespace), and
 *   whether peer connections may use loopback addresses
 */
export async function launchBrowser(extraArgs = [], { executablePath = CHROMIUM, loopback = true } = {}) {
  const args = CHROMIUM_ARGS.filter((a) => loopback || a !== '--allow-loopback-in-peer-connection');
  return chromium.launch({ executablePath, args: [...args, ...extraArgs], headless: true });
}

/**
 * A browser with a profile kept in `dir` (its storage survives closing it
 * and launching it again on the same directory, like a person's browser
 * across a restart), allowed to gather loopback candidates for `origin`.
 * @param {string} dir
 * @param {string} origin
 */
export async function launchProfile(dir, origin) {
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
  });
  await context.grantPermissions(['microphone', 'camera'], { origin });
  return context;
}

/**
 * A new page in its own context (own storage, like another person's
 * browser), or in the profile `browser` is (one from {@link launchProfile}:
 * a person's regular profile, where the Origin Private File System is on
 * disk, not in memory behind the browser process as in the private
 * contexts `newContext` makes). The test grants microphone and camera so
 * that Chromium gathers loopback ICE candidates; the product never asks
 * for them.
 * @param {import('playwright-core').Browser | import('playwright-core').BrowserContext} browser
 * @param {string} origin
 * @param {{width: number, height: number}} [viewport]
 */
export async function newPage(browser, origin, viewport = { width: 1280, height: 800 }) {
  const context = 'newContext' in browser ? await browser.newContext({ viewport, deviceScaleFactor: 1 }) : browser;
  await context.grantPermissions(['microphone', 'camera'], { origin });
  return newPageIn(context);
}

/**
 * Opens sealed signal payloads recorded on the wire, with the secret of
 * the room `link` names (the test has it: it is the link's fragment).
 * @param {string} link a room link, `…/r/ROOM_ID#SECRET`
 * @param {{from: string, to: string, payload: unknown}[]} signals
 * @returns {Promise<any[]>} the payloads as their senders made them
 */
export async function openSignals(link, signals) {
  const url = new URL(link);
  const room = url.pathname.split('/').pop() ?? '';
  const key = await SignalKey.derive(parseSecret(url.hash), roomContext(room));
  return Promise.all(signals.map(async (s) => (await key.openPayload(s.from, s.to, s.payload)).payload));
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 */
export async function join(page, nick) {
  await page.getByLabel('Nickname', { exact: true }).fill(nick);
  await page.getByRole('button', { name: 'Join' }).click();
}

/**
 * Resolves once the page lists exactly these members (besides itself) in
 * the given state.
 * @param {import('playwright-core').Page} page
 * @param {string[]} nicks
 * @param {string} state
 */
export async function waitForMembers(page, nicks, state = 'connected') {
  await explain(page, page.waitForFunction(
    ({ nicks, state }) => {
      const items = [...document.querySelectorAll('[aria-label="Members"] li')];
      const others = items.filter((li) => /** @type {HTMLElement} */ (li).dataset.state !== 'you');
      const names = others.map((li) => li.querySelector('.member-name')?.textContent).sort();
      return (
        JSON.stringify(names) === JSON.stringify([...nicks].sort()) &&
        others.every((li) => /** @type {HTMLElement} */ (li).dataset.state === state)
      );
    },
    { nicks, state },
  ));
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
export async function send(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/**
 * Resolves once the chat log shows a message with exactly this text.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 * @param {string} [author]
 */
export async function waitForMessage(page, text, author) {
  await explain(page, page.waitForFunction(
    ({ text, author }) =>
      [...document.querySelectorAll('[role="log"] .msg')].some(
        (m) =>
          m.querySelector('.msg-text')?.textContent === text &&
          (author === undefined || m.querySelector('.msg-author')?.textContent === author),
      ),
    { text, author },
  ));
}

/**
 * Awaits `waiting`; if it fails, the error also tells what the page showed
 * and logged.
 * @template T
 * @param {import('playwright-core').Page} page
 * @param {Promise<T>} waiting
 */
async function explain(page, waiting) {
  try {
    return await waiting;
  } catch (e) {
    const shown = await page
      .evaluate(() => document.querySelector('main:not([hidden])')?.textContent?.replace(/\s+/g, ' '))
      .catch(() => '(page gone)');
    const logs = /** @type {any} */ (page).logs ?? [];
    throw new Error(`${/** @type {Error} */ (e).message}\npage showed: ${shown}\npage logged:\n${logs.slice(-20).join('\n')}`);
  }
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Opens `/` (a new room) in a new page and joins as `nick`; resolves once
 * joined. The page's address is then the room link.
 * @param {import('playwright-core').Browser | import('playwright-core').BrowserContext} browser
 *   a browser (the page gets a context of its own) or a profile (see {@link newPage})
 * @param {string} origin
 * @param {string} nick
 */
export async function openRoom(browser, origin, nick) {
  const page = await newPage(browser, origin);
  await page.goto(`${origin}/`);
  await page.waitForURL(/\/r\/[A-Za-z0-9_-]{22}#[A-Za-z0-9_-]{43}$/);
  await join(page, nick);
  await page.getByRole('log').getByText(`You joined as ${nick}`).waitFor();
  return page;
}

/**
 * Opens the room `link` in a new context (another person's browser) and
 * joins as `nick`; resolves once joined.
 * @param {import('playwright-core').Browser | import('playwright-core').BrowserContext} browser
 *   a browser (the page gets a context of its own) or a profile (see {@link newPage})
 * @param {string} origin
 * @param {string} link
 * @param {string} nick
 * @param {{width: number, height: number}} [viewport]
 */
export async function enter(browser, origin, link, nick, viewport) {
  const page = await newPage(browser, origin, viewport);
  await page.goto(link);
  await join(page, nick);
  await page.getByRole('log').getByText(`You joined as ${nick}`).waitFor();
  return page;
}

/**
 * A page's errors other than the browser reporting a WebSocket or request
 * that failed at the network level (expected while a server is down or is
 * killed: refused, reset, closed, an empty response, or a socket that was
 * no longer connected when the request went out).
 * @param {import('playwright-core').Page} page
 */
export function unexpectedErrors(page) {
  const errors = /** @type {Error[]} */ (/** @type {any} */ (page).errors);
  return errors
    .map((e) => e.message)
    .filter(
      (m) =>
        !/WebSocket connection to .* failed|^Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|CONNECTION_CLOSED|EMPTY_RESPONSE|SOCKET_NOT_CONNECTED)$/.test(
          m,
        ),
    );
}

// ---------------------------------------------------------------------------
// Helpers for the delivery, history and restart tests (delivery.test.mjs).

/**
 * Starts `peerchat serve` listening on `addr` (`host:port`), for instance
 * the address a killed server had, so that pages already open find the new
 * one where the old one was. Resolves once it prints its URL; same shape as
 * {@link startServer}.
 * @param {string} addr
 * @param {string[]} [args]
 * @param {{logLevel?: string}} [options]
 */
export async function startServerOn(addr, args = [], { logLevel } = {}) {
  const proc = spawn(BIN, ['serve', '--addr', addr, '--turn-port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: logLevel ?? process.env.RUST_LOG ?? 'warn' },
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  /**
   * Every line the server logged (passed on to our standard error, unless a
   * log level was asked for).
   * @type {string[]}
   */
  const log = [];
  createInterface({ input: proc.stderr }).on('line', (line) => {
    log.push(line);
    if (!logLevel) process.stderr.write(`${line}\n`);
  });
  const lines = createInterface({ input: proc.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not print its URL')), WAIT_MS);
    lines.on('line', (line) => {
      const match = /(https?:\/\/\S+?)\/? in your browser/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server on ${addr} exited early with ${code}`));
    });
  });
  return {
    /** @type {string} */
    url,
    proc,
    log,
    /** @param {NodeJS.Signals} [signal] */
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * A server and a browser for one test, both stopped when the test ends.
 * @param {import('node:test').TestContext} t
 * @param {string[]} [args] the server's flags
 */
export async function serverAndBrowser(t, args = []) {
  const server = await startServer(args);
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop('SIGKILL');
  });
  return { server, browser };
}

/**
 * Starts a new server on the address of `server` (which must have
 * stopped): same host and port, so the same URL.
 * @param {{url: string}} server
 * @param {string[]} [args]
 */
export async function restartServer(server, args = []) {
  const restarted = await startServerOn(new URL(server.url).host, args);
  if (restarted.url !== server.url) throw new Error(`restarted at ${restarted.url}, not ${server.url}`);
  return restarted;
}

/**
 * A new page in an existing context (the same person's browser: same
 * localStorage and IndexedDB), with the same error and log capture as
 * {@link newPage}.
 * @param {import('playwright-core').BrowserContext} context
 */
export async function newPageIn(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const errors = [];
  /** @type {string[]} */
  const logs = [];
  page.on('pageerror', (e) => errors.push(e));
  page.on('console', (msg) => {
    logs.push(`${msg.type()}: ${msg.text()}`);
    if (msg.type() === 'error') errors.push(new Error(msg.text()));
  });
  return Object.assign(page, { errors, logs });
}

/**
 * Waits until `fn(arg)` is truthy in the page; a failure says what the
 * page showed and logged. Resolves to the function's value.
 * @template A
 * @param {import('playwright-core').Page} page
 * @param {(arg: A) => unknown} fn
 * @param {A} [arg]
 */
export async function waitForPage(page, fn, arg) {
  const handle = await explain(page, page.waitForFunction(fn, arg));
  return handle.jsonValue();
}

/**
 * The texts of the messages a page shows, in the order shown.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<string[]>}
 */
export function messageTexts(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[role="log"] .msg')].map((m) => m.querySelector('.msg-text')?.textContent ?? ''),
  );
}

/**
 * The notices a page's log shows ("bob joined", "alice left", …), in order.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<string[]>}
 */
export function noticeTexts(page) {
  return page.evaluate(() => [...document.querySelectorAll('[role="log"] .notice')].map((n) => n.textContent ?? ''));
}

/**
 * Resolves once the page shows every one of `texts` (in any order).
 * @param {import('playwright-core').Page} page
 * @param {string[]} texts
 */
export async function waitForMessages(page, texts) {
  await waitForPage(
    page,
    (texts) => {
      const shown = new Set([...document.querySelectorAll('[role="log"] .msg-text')].map((e) => e.textContent));
      return texts.every((t) => shown.has(t));
    },
    texts,
  );
}

/**
 * Waits until the page's own message with exactly this text shows the
 * delivery state `state`; resolves to its status (state, text and title).
 * @param {import('playwright-core').Page} page
 * @param {string} text
 * @param {'sent' | 'sending' | 'waiting' | 'undelivered' | 'delivered'} state
 * @returns {Promise<{state: string, text: string, title: string}>}
 */
export async function waitForDelivery(page, text, state) {
  return /** @type {any} */ (await waitForPage(
    page,
    ({ text, state }) => {
      const own = [...document.querySelectorAll('[role="log"] article.msg.own')].find(
        (m) => m.querySelector('.msg-text')?.textContent === text,
      );
      const status = /** @type {HTMLElement | null | undefined} */ (own?.querySelector('.msg-status'));
      return status?.dataset.state === state
        ? { state: status.dataset.state, text: status.textContent ?? '', title: status.title }
        : null;
    },
    { text, state },
  ));
}

/**
 * Resolves once the page says it is connected to the server.
 * @param {import('playwright-core').Page} page
 */
export async function waitForServerOpen(page) {
  await waitForPage(page, () => document.getElementById('server-status')?.dataset.state === 'open');
}

/**
 * How many messages of the page's room are kept in its IndexedDB.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<number>}
 */
export function storedCount(page) {
  return page.evaluate(async () => {
    const room = location.pathname.split('/').pop();
    /** @type {IDBDatabase | null} */
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open('peerchat');
      // Never create the database here: the page must create it itself.
      request.onupgradeneeded = () => request.transaction?.abort();
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => (request.error?.name === 'AbortError' ? resolve(null) : reject(request.error));
    });
    if (!db) return 0;
    try {
      if (!db.objectStoreNames.contains('messages')) return 0;
      // Each member's history of the room is kept under `ROOM/PEER_ID`.
      const range = IDBKeyRange.bound(`${room}/`, `${room}/\uffff`);
      const count = db.transaction('messages').objectStore('messages').index('room').count(range);
      return await new Promise((resolve, reject) => {
        count.onsuccess = () => resolve(count.result);
        count.onerror = () => reject(count.error);
      });
    } finally {
      db.close();
    }
  });
}

/**
 * Resolves once the page's IndexedDB keeps exactly `n` messages of its room
 * (writes are batched and land a moment after the message is shown).
 * @param {import('playwright-core').Page} page
 * @param {number} n
 */
export async function waitForStored(page, n) {
  const deadline = Date.now() + WAIT_MS;
  let count = await storedCount(page);
  while (count !== n) {
    if (Date.now() > deadline) throw new Error(`the page keeps ${count} messages on the device, not ${n}`);
    // Poll IndexedDB from the page, a frame at a time.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
    count = await storedCount(page);
  }
}
