// @ts-check
/**
 * The service worker: keeps the app shell (every file of the web client,
 * as listed by the server in `/shell.js` with a version made from their
 * contents) in a cache of its own, so that the page opens offline and
 * shows the history kept on this device. Pages and files of the shell are
 * served from that cache; everything else (the WebSocket, the mailbox,
 * health checks) goes to the network untouched. A new version installs
 * beside the old one and waits until the page says to take over (its
 * "Reload to update" button); then the old cache goes.
 */

/** @type {ServiceWorkerGlobalScope & typeof globalThis & {SHELL: {version: string, files: string[]}}} */
const worker = /** @type {any} */ (self);

worker.importScripts('/shell.js');

const { version, files } = worker.SHELL;
const PREFIX = 'peerchat-shell-';
const CACHE = `${PREFIX}${version}`;
const SHELL = new Set(files);

worker.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(files.map((f) => new Request(f, { cache: 'no-cache' })))),
  );
});

worker.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      // The first version takes the open pages at once; later ones are
      // activated only when a page asks.
      await worker.clients.claim();
    })(),
  );
});

worker.addEventListener('message', (event) => {
  if (event.data?.type === 'activate') void worker.skipWaiting();
});

/**
 * The shell file that answers a page's address: the room page for `/` and
 * `/r/ROOM`, the manual page for `/manual`.
 * @param {string} path
 */
function pageFor(path) {
  if (path === '/' || /^\/r\/[^/]+\/?$/.test(path)) return '/index.html';
  if (path === '/manual') return '/manual.html';
  return null;
}

worker.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== worker.location.origin) return;
  const file = request.mode === 'navigate' ? pageFor(url.pathname) : SHELL.has(url.pathname) ? url.pathname : null;
  if (file === null) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      return (await cache.match(file)) ?? fetch(request);
    })(),
  );
});

worker.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const pages = await worker.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const page = pages.find((p) => 'focus' in p);
      if (page) await /** @type {WindowClient} */ (page).focus();
    })(),
  );
});
