// The keyboard alone is enough, at phone width: join, send, attach a file,
// open and close the people panel, leave. The page is never clicked; every
// control reached shows a focus ring.
import {
  run, person, openPage, waitOnline, waitMessage, waitPresence, uniqueRoom, assert, assertEq,
  expectFocus, expectFocusVisible, tabTo, describeFocus,
} from './lib.mjs';

const PANEL = '[data-testid="sidebar"]';

run('keyboard-only walk', async (browser) => {
  const room = uniqueRoom('keys');
  const bob = await person(browser, 'bob', room);
  const alice = await openPage(browser, { label: 'alice', viewport: { width: 390, height: 800 } });
  const keys = alice.keyboard;
  // Listening from the start: Playwright turns on catching file choosers
  // when the first listener is added, and that takes a moment.
  const chooser = new Promise((resolve) => alice.once('filechooser', resolve));

  // Join: the Name field has focus on arrival; Enter in the form joins.
  await alice.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  await expectFocus(alice, '[data-testid="join-name"]');
  await keys.type('alice');
  await keys.press('Tab');
  await expectFocus(alice, '[data-testid="join-room"]');
  await expectFocusVisible(alice);
  await keys.press('ControlOrMeta+A');
  await keys.type(room);
  await keys.press('Enter');
  await waitOnline(alice);

  // Send: the text box has focus once in; Enter sends, Shift+Enter is a new line.
  await expectFocus(alice, '[data-testid="message-input"]');
  await expectFocusVisible(alice);
  await keys.type('hello from the keyboard');
  await keys.press('Shift+Enter');
  await keys.type('second line');
  await keys.press('Enter');
  await waitMessage(bob, 'alice', 'hello from the keyboard\nsecond line');
  assertEq(await alice.inputValue('[data-testid="message-input"]'), '', 'the box is empty once sent');

  // Attach: the control is reached with Tab and opens the file chooser with Enter.
  await tabTo(alice, '[data-testid="attach"]', { shift: true });
  await expectFocusVisible(alice);
  await keys.press('Enter');
  await (await chooser).setFiles({ name: 'typed.txt', mimeType: 'text/plain', buffer: Buffer.from('chosen without a mouse\n') });
  await bob.waitForSelector('[data-testid="message"][data-from="alice"][data-kind="file"][data-state="ready"]');
  await alice.waitForSelector('[data-testid="message"][data-from="alice"][data-kind="file"][data-state="ready"]');

  // People panel: opens as a dialog with focus inside, keeps Tab inside,
  // and Escape closes it, giving focus back to the button that opened it.
  await tabTo(alice, '[data-testid="people-toggle"]', { shift: true });
  await expectFocusVisible(alice);
  await keys.press('Enter');
  await alice.waitForSelector(`${PANEL}[role="dialog"][aria-modal="true"]`, { state: 'visible' });
  await alice.waitForSelector('[data-testid="panel-backdrop"]', { state: 'visible' });
  await alice.waitForSelector(`${PANEL} [data-testid="presence-user"][data-name="bob"]`, { state: 'visible' });
  await expectFocus(alice, '[data-testid="people-close"]');
  await expectFocusVisible(alice);
  assertEq(await alice.getAttribute('[data-testid="people-toggle"]', 'aria-expanded'), 'true', 'toggle says the panel is open');
  for (const key of ['Tab', 'Tab', 'Shift+Tab']) {
    await keys.press(key);
    assert(await alice.evaluate((sel) => document.querySelector(sel).contains(document.activeElement), PANEL),
      `${key} stays inside the open panel (focus on ${await describeFocus(alice)})`);
  }
  await keys.press('Escape');
  await alice.waitForSelector(PANEL, { state: 'hidden' });
  await alice.waitForSelector('[data-testid="panel-backdrop"]', { state: 'hidden' });
  await expectFocus(alice, '[data-testid="people-toggle"]');
  assertEq(await alice.getAttribute('[data-testid="people-toggle"]', 'aria-expanded'), 'false', 'toggle says the panel is closed');

  // Again, closed this time with its close button.
  await keys.press('Enter');
  await alice.waitForSelector(`${PANEL}[role="dialog"]`, { state: 'visible' });
  await expectFocus(alice, '[data-testid="people-close"]');
  await keys.press('Enter');
  await alice.waitForSelector(PANEL, { state: 'hidden' });
  await expectFocus(alice, '[data-testid="people-toggle"]');

  // Leave: back on the join form, with focus in it.
  await tabTo(alice, '[data-testid="leave-button"]');
  await expectFocusVisible(alice);
  await keys.press('Enter');
  await alice.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  assert(await alice.evaluate(() => document.querySelector('[data-testid="join-form"]').contains(document.activeElement)),
    `focus is on the join form after leaving (${await describeFocus(alice)})`);
  await waitPresence(bob, ['bob']);
});
