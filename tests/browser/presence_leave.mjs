// The presence list follows people in and out of the room.
import { run, person, waitPresence, uniqueRoom, assertEq } from './lib.mjs';

run('presence updates when one leaves', async (browser) => {
  const room = uniqueRoom('presence');
  const alice = await person(browser, 'alice', room);
  await waitPresence(alice, ['alice']);
  const bob = await person(browser, 'bob', room);
  await waitPresence(alice, ['alice', 'bob']);
  await waitPresence(bob, ['alice', 'bob']);

  await bob.click('[data-testid="leave-button"]');
  await bob.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  await waitPresence(alice, ['alice']);
  assertEq(await alice.textContent('[data-testid="people-count"]'), '1', 'people count');

  // Someone closing the tab leaves too.
  const carol = await person(browser, 'carol', room);
  await waitPresence(alice, ['alice', 'carol']);
  await carol.close();
  await waitPresence(alice, ['alice']);
});
