// Accessibility, by axe (@axe-core/playwright): every page and dialog
// (the join page, the room, connection details, sharing, notifications,
// search, export, the page without a server) at desktop and phone width,
// in the light and the dark theme, has no serious or critical violation.
// The room shows a conversation using everything a message can hold (a day
// before today, links, formatting, code, mentions, delivery states), and
// its screenshots at each width and theme go to target/screenshots/.
// Real server, real Chromium; run inside the loopback-only network
// namespace (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AxeBuilder } from '@axe-core/playwright';

import {
  enter,
  join,
  newPage,
  screenshot,
  send,
  serverAndBrowser,
  waitForMembers,
  waitForMessage,
  waitForPage,
} from './lib/harness.mjs';

const LOOKS = [
  { name: 'desktop-light', viewport: { width: 1280, height: 800 }, colorScheme: 'light' },
  { name: 'desktop-dark', viewport: { width: 1280, height: 800 }, colorScheme: 'dark' },
  { name: 'phone-light', viewport: { width: 390, height: 844 }, colorScheme: 'light' },
  { name: 'phone-dark', viewport: { width: 390, height: 844 }, colorScheme: 'dark' },
];

/**
 * Runs axe on the page as it is, in every look; fails on a serious or
 * critical violation, saying where.
 * @param {import('playwright-core').Page} page
 * @param {string} what
 * @param {{shoot?: string, looks?: string[], open?: (phone: boolean) => Promise<void>}} [options]
 *   shoot: also save a screenshot under this name, in every look or those
 *   named in `looks`; open: puts the page in the state to check after a
 *   resize (a dialog reopened)
 */
async function check(page, what, { shoot, looks, open } = {}) {
  for (const look of LOOKS) {
    await page.setViewportSize(look.viewport);
    await page.emulateMedia({ colorScheme: /** @type {'light' | 'dark'} */ (look.colorScheme) });
    if (open) await open(look.viewport.width < 720);
    // Drawn in the new size and theme.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const { violations } = await new AxeBuilder({ page }).analyze();
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`).join('; ')}`),
      [],
      `${what}, ${look.name}`,
    );
    // Nothing sticks out sideways: neither the page nor the members' list
    // scrolls horizontally.
    const sideways = await page.evaluate(() =>
      [document.documentElement, ...document.querySelectorAll('.members-panel')]
        .filter((el) => el.scrollWidth > el.clientWidth + 1)
        .map((el) => `${el.tagName.toLowerCase()}${el.className ? `.${el.className}` : ''}: ${el.scrollWidth} > ${el.clientWidth}`),
    );
    assert.deepEqual(sideways, [], `${what}, ${look.name}: wider than its box`);
    if (shoot && (!looks || looks.includes(look.name))) await screenshot(page, `${shoot}-${look.name}`);
  }
}

/** Local 18:40 yesterday. */
function yesterdayEvening() {
  const d = new Date();
  d.setDate(d.getDate() - 1);
  d.setHours(18, 40, 0, 0);
  return d;
}

test('every page and dialog passes axe in both themes at desktop and phone width', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  // Carol starts the room yesterday evening (her clock says so).
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  await context.grantPermissions(['microphone', 'camera'], { origin: server.url });
  await context.clock.install({ time: yesterdayEvening() });
  const carol = await context.newPage();
  await carol.goto(`${server.url}/`);
  await carol.waitForURL(/\/r\/[A-Za-z0-9_-]{22}#[A-Za-z0-9_-]{43}$/);
  const link = carol.url();

  // The join page.
  const alice = await newPage(browser, server.url);
  await alice.goto(link);
  await alice.getByLabel('Nickname', { exact: true }).waitFor();
  await check(alice, 'the join page');

  await join(carol, 'carol');
  await carol.getByRole('log').getByText('You joined as carol').waitFor();
  await send(carol, 'Agenda for tomorrow is in the doc: https://example.com/notes/2024_plan');
  await send(carol, 'I will bring *coffee* ☕');
  await waitForMessage(carol, 'I will bring coffee ☕');
  // Carol's night passes.
  await context.clock.setSystemTime(new Date());

  await join(alice, 'alice');
  await alice.getByRole('log').getByText('You joined as alice').waitFor();
  const bob = await enter(browser, server.url, link, 'bob', { width: 390, height: 844 });
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  await send(bob, 'Morning @alice! The _build_ failed again:\n```\nerror[E0382]: borrow of moved value: `conn`\n  --> src/main.rs:42:9\n```');
  await waitForMessage(alice, 'Morning @alice! The build failed again:error[E0382]: borrow of moved value: `conn`\n  --> src/main.rs:42:9');
  await send(alice, 'On it. `cargo test` passes here, see https://ci.example.org/run/1234 (green).');
  await send(carol, 'Thanks @bob, and \\*no\\* rush.');
  await waitForMessage(alice, 'Thanks @bob, and *no* rush.');
  await waitForPage(alice, () => document.querySelectorAll('.msg-status[data-state="delivered"]').length === 1);

  // The room: the h1, the day separators, the conversation.
  assert.equal(await alice.getByRole('heading', { level: 1 }).textContent(), 'Conversation');
  assert.deepEqual(await alice.locator('[role="log"] .day').allTextContents(), ['Yesterday', 'Today']);
  await alice.getByLabel('Message', { exact: true }).fill('Sounds good @c');
  await alice.getByRole('listbox', { name: 'Members to mention' }).waitFor();
  // The members' panel as it opens at each width: open on a desktop,
  // folded on a phone.
  const members = alice.locator('#members-panel');
  const fold = async (/** @type {boolean} */ phone) => {
    await members.evaluate((el, open) => {
      /** @type {HTMLDetailsElement} */ (el).open = open;
    }, !phone);
  };
  await check(alice, 'the room', { shoot: 'conversation', open: fold });
  await alice.getByLabel('Message', { exact: true }).fill('');

  // A private conversation, with a message each way and an unread count.
  await bob.locator('#members-panel summary').click();
  await bob.getByRole('button', { name: 'Private message with alice' }).click();
  await bob.getByLabel('Private message to alice', { exact: true }).fill('Can we talk about the build, just us?');
  await bob.getByLabel('Private message to alice', { exact: true }).press('Enter');
  const unread = alice.getByRole('button', { name: /^Private message with bob.*1 unread$/ });
  await fold(false);
  await unread.waitFor();
  await check(alice, 'the room with a private message unread', { open: fold });
  await fold(false);
  await unread.click();
  await waitForMessage(alice, 'Can we talk about the build, just us?', 'bob');
  await alice.getByLabel('Private message to bob', { exact: true }).fill('Sure, go ahead.');
  await alice.getByLabel('Private message to bob', { exact: true }).press('Enter');
  await waitForPage(alice, () => document.querySelector('#private-view .msg-status[data-state="delivered"]') !== null);
  await check(alice, 'a private conversation', { shoot: 'private', open: fold });
  await alice.getByRole('button', { name: '← Room' }).click();


  /**
   * @param {string} button the button that opens it
   * @param {string} name the dialog's name
   * @param {() => Promise<void>} [then] fills it in
   */
  const dialog = async (button, name, then) => {
    const open = async () => {
      if (!(await alice.getByRole('dialog', { name }).isVisible())) {
        await alice.getByRole('button', { name: button, exact: true }).click();
        await alice.getByRole('dialog', { name }).waitFor();
        if (then) await then();
      }
    };
    const shot = name.toLowerCase().replace(/[^a-z]+/g, '-');
    await check(alice, `the “${name}” dialog`, { open, shoot: `dialog-${shot}`, looks: ['desktop-light', 'phone-dark'] });
    await alice.keyboard.press('Escape');
    await alice.getByRole('dialog', { name }).waitFor({ state: 'hidden' });
  };
  await fold(false);
  await dialog('Connection details', 'Connection details', async () => {
    await alice.locator('#details-body tr').first().waitFor();
  });
  await dialog('Share…', 'Invite people');
  await dialog('Notifications: off', 'Notifications');
  await dialog('Search', 'Search this device', async () => {
    await alice.getByRole('searchbox', { name: 'Words to find' }).fill('build');
    await alice.getByRole('button', { name: 'Search', exact: true }).last().click();
    await alice.getByRole('status').getByText('One message of 5 on this device').waitFor();
  });
  await dialog('Export', 'Export the history');
  await dialog('Rename yourself', 'Change your nickname');
  await dialog('Clear history on this device', 'Clear this room from this device?');
  await dialog('Verify bob', 'Verify bob', async () => {
    await alice.getByRole('dialog', { name: 'Verify bob' }).getByRole('button', { name: 'Mark as verified' }).waitFor();
  });

  // Files in the room: one received (with Save), one sent (how far each member is).
  /**
   * @param {import('playwright-core').Page} page
   * @param {string} name
   * @param {string} base64
   */
  const dropFile = (page, name, base64) =>
    page.evaluate(
      ({ name, base64 }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], name));
        document.getElementById('room-view')?.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      },
      { name, base64 },
    );
  await dropFile(bob, 'minutes of the meeting.txt', Buffer.from('Minutes\n'.repeat(500)).toString('base64'));
  await dropFile(
    alice,
    'dot.png',
    Buffer.from(
      '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
        '1f15c4890000000d4944415478da63f8cfc0f01f0005000200e2b7a0d60000000049454e44ae426082',
      'hex',
    ).toString('base64'),
  );
  await alice.locator('.file-card', { hasText: 'minutes of the meeting.txt' }).getByText('Received and checked').waitFor();
  // Bob and carol both fetch the picture, and whoever has it first may serve
  // it to the other: alice's card names who took it from her, one or both.
  // (Bob's room is behind his private conversation: there, only attached.)
  for (const page of [bob, carol]) {
    await page.locator('.file-card', { hasText: 'dot.png' }).getByText('Received and checked').waitFor({ state: 'attached' });
  }
  await alice.locator('.file-card', { hasText: 'dot.png' }).getByText(/^Sent: .*(bob|carol) 100%/).waitFor();
  await check(alice, 'files in the room', { shoot: 'room-files', open: fold });

  // Replies, reactions and an edit; then the reply bar and the reaction
  // picker open, reached by keyboard.
  /**
   * @param {import('playwright-core').Page} page
   * @param {string} text
   * @param {string} name
   */
  const press = async (page, text, name) => {
    const msg = page.locator('[role="log"] .msg').filter({ has: page.locator('.msg-text', { hasText: text }) });
    const control = msg.getByRole('button', { name, exact: true });
    await control.focus();
    await control.press('Enter');
  };
  await press(alice, 'Morning', 'React to bob’s message');
  await alice.getByRole('button', { name: 'React with party' }).press('Enter');
  await press(carol, 'Thanks', 'Edit your message');
  await send(carol, 'Thanks @bob, no rush at all.');
  await press(alice, 'Morning', 'Reply to bob');
  await send(alice, 'Fixed in main.');
  await waitForPage(alice, () => {
    const texts = [...document.querySelectorAll('[role="log"] .msg')].map((m) => m.textContent ?? '');
    return texts.some((t) => t.includes('no rush at all.') && t.includes('edited')) && texts.some((t) => t.includes('Fixed in main.'));
  });
  await press(alice, 'On it', 'Reply to your message');
  await press(alice, 'Morning', 'React to bob’s message');
  await alice.getByRole('group', { name: 'Reactions' }).waitFor();
  await check(alice, 'the room with replies, reactions and edits', { shoot: 'entries', looks: ['desktop-light', 'desktop-dark', 'phone-dark'] });

  // The page without a server.
  const manual = await newPage(browser, server.url);
  await manual.goto(`${server.url}/manual`);
  await check(manual, 'the page without a server');

  for (const page of [alice, bob, carol, manual]) assert.deepEqual(/** @type {any} */ (page).errors ?? [], []);
});
