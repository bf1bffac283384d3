// A name already used in the room is refused with a message on the join form.
import { run, person, openPage, waitPresence, uniqueRoom, assert } from './lib.mjs';

run('name_taken is shown to the user', async (browser) => {
  const room = uniqueRoom('taken');
  const alice = await person(browser, 'alice', room);
  const other = await openPage(browser, { label: 'other' });
  await other.fill('[data-testid="join-name"]', 'alice');
  await other.fill('[data-testid="join-room"]', room);
  await other.click('[data-testid="join-button"]');
  const error = await other.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  const text = await error.textContent();
  assert(/already/i.test(text) && text.includes('alice'), `error names the problem: ${text}`);
  assert(await other.isVisible('[data-testid="join-form"]'), 'join form still offered');

  // Picking another name then works.
  await other.fill('[data-testid="join-name"]', 'alice2');
  await other.click('[data-testid="join-button"]');
  await other.waitForSelector('[data-testid="status"][data-state="online"]');
  await waitPresence(alice, ['alice', 'alice2']);
});
