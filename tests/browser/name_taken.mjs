// A name already used in the room is refused with a message on the join form
// and the Name field focused, both when typed in and when a second tab of the
// same browser comes back with the remembered name (at once, never as "Offline").
import { run, person, openPage, waitPresence, uniqueRoom, base, assert, assertEq, expectFocus } from './lib.mjs';

/** The join form's error text, once it shows, and how the Name field is marked. */
async function refusal(page) {
  const error = await page.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  const text = await error.textContent();
  const field = await page.$eval('[data-testid="join-name"]', (n) => ({
    invalid: n.getAttribute('aria-invalid'),
    describedBy: n.getAttribute('aria-describedby'),
  }));
  assertEq(field, { invalid: 'true', describedBy: 'join-error' }, 'the Name field is marked as the one to change');
  await expectFocus(page, '[data-testid="join-name"]');
  assert(await page.isVisible('[data-testid="join-form"]'), 'join form still offered');
  return text;
}

run('name_taken is shown to the user', async (browser) => {
  const room = uniqueRoom('taken');
  const alice = await person(browser, 'alice', room);

  // Someone else types the same name.
  const other = await openPage(browser, { label: 'other' });
  await other.fill('[data-testid="join-name"]', 'alice');
  await other.fill('[data-testid="join-room"]', room);
  await other.click('[data-testid="join-button"]');
  const text = await refusal(other);
  assert(/already/i.test(text) && text.includes('alice'), `error names the problem: ${text}`);

  // Picking another name then works.
  await other.fill('[data-testid="join-name"]', 'alice2');
  await other.click('[data-testid="join-button"]');
  await other.waitForSelector('[data-testid="status"][data-state="online"]');
  await waitPresence(alice, ['alice', 'alice2']);

  // A second tab of alice's browser remembers her name and room and tries
  // them; alice's first tab holds the name, so the new tab says so at once.
  const tab = await alice.context().newPage();
  tab.on('console', (m) => {
    if (m.type() === 'error') console.error(`[second tab console] ${m.text()}`);
  });
  await tab.addInitScript(() => {
    window.__statuses = [];
    document.addEventListener('DOMContentLoaded', () => {
      const status = document.querySelector('[data-testid="status"]');
      new MutationObserver(() => window.__statuses.push(status.textContent))
        .observe(status, { subtree: true, childList: true, characterData: true });
    });
  });
  const started = Date.now();
  await tab.goto(base);
  const tabText = await refusal(tab);
  const took = Date.now() - started;
  assert(/already/i.test(tabText) && tabText.includes('alice') && /another tab/i.test(tabText),
    `the second tab says the name is in use, maybe by another tab: ${tabText}`);
  assert(took < 5000, `refused at once, not after retries (${took} ms)`);
  const statuses = await tab.evaluate(() => window.__statuses);
  assert(!statuses.some((s) => /offline/i.test(s)), `never shown as offline: ${JSON.stringify(statuses)}`);
  assert(await tab.isHidden('[data-testid="chat-screen"]'), 'no empty room is shown');
  await waitPresence(alice, ['alice', 'alice2']);

  // With another name the second tab gets in too.
  await tab.fill('[data-testid="join-name"]', 'alice-phone');
  await tab.press('[data-testid="join-name"]', 'Enter');
  await tab.waitForSelector('[data-testid="status"][data-state="online"]');
  await waitPresence(alice, ['alice', 'alice2', 'alice-phone']);
});
