// @ts-check
/**
 * The installable app: registers the service worker (`/sw.js`), which
 * keeps the app shell so that the page opens offline, and offers to
 * reload when a new version of the page is waiting. Reloading in a room
 * comes back as the same member, unnoticed.
 * @module
 */

/** Checks for a new version this often while the page is open (ms). */
const UPDATE_CHECK_MS = 60 * 60 * 1000;

/**
 * @param {{banner: HTMLElement, button: HTMLButtonElement}} prompt where a
 *   waiting update is announced
 */
export async function registerServiceWorker({ banner, button }) {
  // Service workers exist only in secure contexts (https, localhost).
  if (!('serviceWorker' in navigator)) return;
  let registration;
  try {
    registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  } catch (e) {
    console.warn('peerchat: the page will not work offline', e);
    return;
  }
  // A first install takes control at once (the worker claims the page);
  // a new version waits for the reader's word.
  const offer = () => {
    if (registration.waiting && navigator.serviceWorker.controller) banner.hidden = false;
  };
  offer();
  registration.addEventListener('updatefound', () => {
    const worker = registration.installing;
    worker?.addEventListener('statechange', () => {
      if (worker.state === 'installed') offer();
    });
  });
  let reloading = false;
  button.addEventListener('click', () => {
    if (!registration.waiting) {
      location.reload();
      return;
    }
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      if (reloading) return;
      reloading = true;
      location.reload();
    });
    registration.waiting.postMessage({ type: 'activate' });
  });
  const check = () => void registration.update().catch(() => {});
  setInterval(check, UPDATE_CHECK_MS);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') check();
  });
}
