// Rename in place: two pages and a terminal client in one room. A page
// renames itself from the member list, the terminal with /nick; the others
// show "alice is now ally", the new name on later messages and in the
// member list; a nickname in use is refused with a clear message; a reload
// comes back under the new nickname. Runs inside the loopback-only
// namespace.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { terminalClients } from './lib/cli.mjs';
import {
  enter,
  noticeTexts,
  openRoom,
  screenshot,
  send,
  serverAndBrowser,
  waitForMembers,
  waitForMessage,
  waitForPage,
} from './lib/harness.mjs';

/**
 * Resolves once the page's log shows the notice `text`.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
function waitForNotice(page, text) {
  return waitForPage(
    page,
    (text) => [...document.querySelectorAll('[role="log"] .notice')].some((n) => n.textContent === text),
    text,
  );
}

test('members rename in place, from a page and from the terminal', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const { client } = terminalClients(t, 'peerchat-rename-');

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob');
  const carol = client('carol', [link, '--plain']);
  await carol.waitFor((l) => l.startsWith('* joined as carol; here: alice, bob'), 'err');
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);

  // Alice renames herself from the member list.
  await alice.getByRole('button', { name: 'Rename yourself' }).click();
  const dialog = alice.getByRole('dialog', { name: 'Change your nickname' });
  await dialog.getByLabel('New nickname').fill('ally');
  await dialog.getByRole('button', { name: 'Rename' }).click();
  await waitForNotice(alice, 'You are now ally');
  assert.equal(await dialog.isVisible(), false);
  await waitForNotice(bob, 'alice is now ally');
  await carol.waitFor((l) => l === '* alice is now ally', 'err');
  await waitForMembers(bob, ['ally', 'carol']);
  await send(alice, 'hello as ally');
  await waitForMessage(bob, 'hello as ally', 'ally');
  await carol.waitFor((l) => l === 'ally: hello as ally');
  // Nobody was told a safety number changed.
  for (const page of [alice, bob]) {
    assert.ok(!(await noticeTexts(page)).some((n) => n.includes('safety number')));
  }

  // The terminal renames with /nick.
  carol.say('/nick cleo');
  await carol.waitFor((l) => l === '* you are now cleo', 'err');
  await waitForNotice(alice, 'carol is now cleo');
  await waitForNotice(bob, 'carol is now cleo');
  carol.say('hi from cleo');
  await waitForMessage(alice, 'hi from cleo', 'cleo');
  await waitForMessage(bob, 'hi from cleo', 'cleo');
  await waitForMembers(alice, ['bob', 'cleo']);

  // A nickname in use (ignoring case) is refused with a clear message,
  // and nothing changes.
  carol.say('/nick BOB');
  await carol.waitFor((l) => l === '* not renamed: the nickname "BOB" is taken in this room; pick another', 'err');
  await bob.getByRole('button', { name: 'Rename yourself' }).click();
  const bobDialog = bob.getByRole('dialog', { name: 'Change your nickname' });
  await bobDialog.getByLabel('New nickname').fill('Ally');
  await bobDialog.getByRole('button', { name: 'Rename' }).click();
  await bobDialog.getByText('“Ally” is already taken in this room. Pick another nickname.').waitFor();
  await screenshot(bob, 'rename-taken');
  await bobDialog.getByRole('button', { name: 'Cancel' }).click();
  await waitForMembers(alice, ['bob', 'cleo']);

  // A reload comes back under the new nickname, as the same member.
  await alice.reload();
  await waitForPage(alice, () =>
    [...document.querySelectorAll('[role="log"] .notice')].some((n) => n.textContent?.startsWith('You are back as ally.')),
  );
  await waitForMembers(alice, ['bob', 'cleo']);
  await waitForMembers(bob, ['ally', 'cleo']);
  await send(alice, 'back as ally');
  await waitForMessage(bob, 'back as ally', 'ally');
  await carol.waitFor((l) => l === 'ally: back as ally');
});
