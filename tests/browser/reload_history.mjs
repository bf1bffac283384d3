// Reloading the page brings back the room's history.
import { run, person, say, waitMessage, waitOnline, uniqueRoom, assertEq } from './lib.mjs';

run('a reload shows history', async (browser) => {
  const room = uniqueRoom('history');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  await say(alice, 'first message');
  await say(bob, 'second message');
  await waitMessage(alice, 'bob', 'second message');

  await alice.reload();
  // Name and room were remembered: the page goes straight back into the room.
  await waitOnline(alice);
  await waitMessage(alice, 'alice', 'first message');
  await waitMessage(alice, 'bob', 'second message');
  const replayed = await alice.evaluate(() => Array.from(document.querySelectorAll('[data-testid="message"]'))
    .map((b) => [b.dataset.from, b.querySelector('[data-testid="message-text"]').textContent, b.dataset.replay]));
  assertEq(replayed, [['alice', 'first message', 'true'], ['bob', 'second message', 'true']], 'history in order, once each');
  assertEq(await alice.textContent('[data-testid="room-name"]'), room, 'same room after reload');

  // The chat goes on after the reload.
  await say(bob, 'welcome back');
  await waitMessage(alice, 'bob', 'welcome back');
});
