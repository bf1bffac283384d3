// While one person types (without sending) the other sees "NAME is typing"; it goes away when the message arrives.
import { run, person, waitMessage, uniqueRoom, assert, assertEq } from './lib.mjs';

const TYPING = '[data-testid="typing-text"]';

run('typing shows for the other user', async (browser) => {
  const room = uniqueRoom('typing');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  // Bob's clock stands still, so the page's own expiry of a quiet typist can
  // never fire: whatever takes the indicator away must be alice's message.
  await bob.clock.install();
  await bob.clock.pauseAt(Date.now());

  await alice.locator('[data-testid="message-input"]').pressSequentially('hello bo');
  await bob.waitForSelector(TYPING, { state: 'visible' });
  assertEq(await bob.textContent(TYPING), 'alice is typing', "bob's indicator names alice");
  assertEq(await bob.locator('[data-testid="message"]').count(), 0, 'nothing was sent yet');
  assertEq(await alice.locator(TYPING).count(), 0, 'alice is not shown her own typing');

  await alice.locator('[data-testid="message-input"]').pressSequentially('b');
  await alice.press('[data-testid="message-input"]', 'Enter');
  await waitMessage(bob, 'alice', 'hello bob');
  // The indicator is cleared in the same step that shows the message.
  const after = await bob.evaluate((sel) => ({ typing: document.querySelector(sel) !== null, text: document.querySelector('[data-testid="typing"]').textContent }), TYPING);
  assertEq(after, { typing: false, text: '' }, 'indicator gone once alice has sent');
  assert(await alice.inputValue('[data-testid="message-input"]') === '', "alice's box is empty after sending");
});
