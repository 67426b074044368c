// @ts-check
/**
 * Small page helpers shared by the room page and the manual-connection page.
 * @module
 */

/**
 * The element with this id; a missing one is a bug in the page.
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return /** @type {T} */ (el);
}

/**
 * Shows a connection state in a status element (`role="status"`).
 * @param {HTMLElement} el
 * @param {'idle'|'connecting'|'open'|'offline'} state
 * @param {string} text
 */
export function showStatus(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

/**
 * Saves what an object URL holds as a file named `name` (the browser's
 * download).
 * @param {string} url
 * @param {string} name
 */
export function downloadUrl(url, name) {
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}
