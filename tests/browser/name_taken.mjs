// A name already used in the room by someone else is refused with a
// message on the join form and the Name field focused, and so is a name
// that only looks the same. A second tab of the same browser is the same
// person: it goes straight in under the remembered name, listed once, never
// shown as "Offline".
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

  // Someone else (another browser) types the same name, or one that looks
  // the same (a Cyrillic "а").
  const other = await openPage(browser, { label: 'other' });
  for (const name of ['alice', '\u0430lice']) {
    await other.fill('[data-testid="join-name"]', name);
    await other.fill('[data-testid="join-room"]', room);
    await other.click('[data-testid="join-button"]');
    const text = await refusal(other);
    assert(/already/i.test(text) && text.includes(name), `error names the problem: ${text}`);
  }

  // Picking another name then works.
  await other.fill('[data-testid="join-name"]', 'alice2');
  await other.click('[data-testid="join-button"]');
  await other.waitForSelector('[data-testid="status"][data-state="online"]');
  await waitPresence(alice, ['alice', 'alice2']);

  // A second tab of alice's browser remembers her name and room and goes
  // in as her: the same person, listed once.
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
  await tab.waitForSelector('[data-testid="status"][data-state="online"]');
  const took = Date.now() - started;
  assert(took < 5000, `in at once, not after retries (${took} ms)`);
  const statuses = await tab.evaluate(() => window.__statuses);
  assert(!statuses.some((s) => /offline/i.test(s)), `never shown as offline: ${JSON.stringify(statuses)}`);
  assertEq(await tab.textContent('#status-text'), 'Connected as alice', 'the tab is alice');
  await waitPresence(tab, ['alice', 'alice2']);
  await waitPresence(other, ['alice', 'alice2']);

  // Closing her first tab leaves her in the room through the second.
  await alice.close();
  await tab.fill('[data-testid="message-input"]', 'from the other tab');
  await tab.press('[data-testid="message-input"]', 'Enter');
  await other.waitForFunction(() => Array.from(document.querySelectorAll('[data-testid="message"]')).some((b) => b.dataset.from === 'alice'));
  await waitPresence(other, ['alice', 'alice2']);
  await tab.close();
  await waitPresence(other, ['alice2']);
});
