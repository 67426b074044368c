// Safety numbers and marks as the clients show them: the page's Verify
// dialog and member list, the terminal client's /verify.
import assert from 'node:assert/strict';

/**
 * Opens the Verify dialog for `nick` and resolves to the safety number it
 * shows, once worked out.
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 */
export async function safetyNumberShown(page, nick) {
  await page.getByRole('button', { name: `Verify ${nick}` }).click();
  const dialog = page.getByRole('dialog', { name: `Verify ${nick}` });
  await dialog.waitFor();
  const number = dialog.getByLabel('Safety number', { exact: true });
  await page.waitForFunction(() => /^\d{5}( \d{5}){11}$/.test(document.getElementById('safety-number')?.textContent ?? ''));
  const digits = (await number.textContent()) ?? '';
  assert.equal(await dialog.locator('#safety-qr svg path').count(), 1, 'a QR code');
  return digits;
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 */
export async function closeVerify(page, nick) {
  await page.getByRole('dialog', { name: `Verify ${nick}` }).getByRole('button', { name: 'Close' }).click();
}

/**
 * The mark the member list shows next to `nick`, if any.
 * @param {import('playwright-core').Page} page
 * @param {string} nick
 */
export function memberMark(page, nick) {
  return page.evaluate((nick) => {
    const li = [...document.querySelectorAll('[aria-label="Members"] li')].find(
      (l) => l.querySelector('.member-name')?.textContent === nick,
    );
    return li?.querySelector('.member-mark')?.textContent ?? null;
  }, nick);
}

/**
 * Asks a line-mode terminal client for its safety number with `nick`.
 * @param {import('./cli.mjs').LineClient} client
 * @param {string} nick
 */
export async function terminalSafetyNumber(client, nick) {
  const before = client.err.length;
  client.say(`/verify ${nick}`);
  const digits = /^\*\s+(\d{5}( \d{5}){11})$/;
  // Only what it printed since: the same number may have been printed before.
  const line = () => client.err.slice(before).find((l) => digits.test(l));
  await client.waitFor(() => line() !== undefined, 'err');
  return digits.exec(line() ?? '')?.[1] ?? '';
}
