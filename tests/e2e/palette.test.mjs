// The member colours in web/style.css meet WCAG AA (4.5:1) as name text on
// the message and panel backgrounds, in the light and the dark theme, and
// under the white letter of an avatar.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { NAME_COLOURS } from '../../web/js/names.js';

const css = readFileSync(new URL('../../web/style.css', import.meta.url), 'utf8');

/**
 * The custom properties of the first block that opens with `opening`.
 * @param {string} opening
 */
function properties(opening) {
  const start = css.indexOf(opening);
  assert.ok(start >= 0, opening);
  const block = css.slice(start, css.indexOf('}', start));
  return Object.fromEntries([...block.matchAll(/(--[\w-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1], m[2]]));
}

/** @param {string} hex */
function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * @param {string} a
 * @param {string} b
 */
function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

test('member colours meet WCAG AA in both themes', () => {
  const light = properties(':root {');
  const dark = { ...light, ...properties('@media (prefers-color-scheme: dark) {\n  :root {') };
  for (const [name, theme] of Object.entries({ light, dark })) {
    for (let i = 0; i < NAME_COLOURS; i += 1) {
      const colour = theme[`--name-${i}`];
      assert.ok(colour, `--name-${i} in the ${name} theme`);
      for (const bg of ['--surface', '--surface-2']) {
        const ratio = contrast(colour, theme[bg]);
        assert.ok(ratio >= 4.5, `${name} --name-${i} ${colour} on ${bg} ${theme[bg]}: ${ratio.toFixed(2)}`);
      }
    }
  }
  const avatars = [...css.matchAll(/\.avatar\[data-colour="(\d+)"\] \{ background: (#[0-9a-f]{6}); \}/gi)];
  assert.equal(avatars.length, NAME_COLOURS);
  for (const [, i, colour] of avatars) {
    assert.ok(contrast(colour, '#ffffff') >= 4.5, `avatar ${i} ${colour} under white`);
  }
});
