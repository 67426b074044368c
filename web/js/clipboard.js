// @ts-check
/**
 * Copying to the clipboard, with a fallback for pages that are not a
 * secure context (plain `http://` on a LAN), where the Clipboard API is
 * missing.
 * @module
 */

/**
 * Copies the text of `field` and says so on `button` for two seconds.
 * @param {HTMLInputElement | HTMLTextAreaElement} field
 * @param {HTMLButtonElement} button
 */
export async function copyField(field, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand('copy');
  }
  button.textContent = 'Copied!';
  setTimeout(() => {
    button.textContent = label;
  }, 2000);
}
