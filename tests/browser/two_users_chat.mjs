// Two people in one room see each other's messages, with the sender's name.
import { run, person, say, waitMessage, uniqueRoom, assertEq } from './lib.mjs';

run('two users chat', async (browser) => {
  const room = uniqueRoom('chat');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);

  await say(alice, 'hello bob');
  await waitMessage(bob, 'alice', 'hello bob');
  await say(bob, 'hi alice');
  await waitMessage(alice, 'bob', 'hi alice');

  // Each sees the other's name on the other's message, and their own set apart.
  const seenByBob = await bob.evaluate(() => {
    const b = document.querySelector('[data-testid="message"][data-from="alice"]');
    const group = b.closest('[data-testid="message-group"]');
    return { name: group.querySelector('[data-testid="message-from"]').textContent, mine: b.dataset.mine };
  });
  assertEq(seenByBob, { name: 'alice', mine: 'false' }, "bob sees alice's name on her message");
  const seenByAlice = await alice.evaluate(() => {
    const b = document.querySelector('[data-testid="message"][data-from="bob"]');
    const group = b.closest('[data-testid="message-group"]');
    return { name: group.querySelector('[data-testid="message-from"]').textContent, mine: b.dataset.mine };
  });
  assertEq(seenByAlice, { name: 'bob', mine: 'false' }, "alice sees bob's name on his message");
  const own = await alice.evaluate(() => {
    const b = document.querySelector('[data-testid="message"][data-from="alice"]');
    return { mine: b.dataset.mine, grouped: b.closest('[data-testid="message-group"]').classList.contains('mine') };
  });
  assertEq(own, { mine: 'true', grouped: true }, "alice's own message is set apart");

  // Messages carry a time.
  const time = await bob.textContent('[data-testid="message"][data-from="alice"] [data-testid="message-time"]');
  assertEq(/^\d{1,2}:\d{2}/.test(time.trim()), true, `message time looks like a clock time (${time})`);
});
