// Rooms side by side: alice is in `a` and `b` at once, each on its own
// connection. While `a` is shown, bob talks in `b`: b's button says how many
// messages came and how many mention alice, in its accessible name; showing
// `b` (from the keyboard) shows them and clears the counts, and `a`'s list
// comes back scrolled where alice left it. A reload brings both rooms back;
// leaving `b` closes only b's connection, and `a` goes on.
import {
  run, person, say, waitMessage, waitOnline, waitPresence, uniqueRoom, assert, assertEq, expectFocus,
} from './lib.mjs';

/** The room bar: each button's room, accessible name and whether it is the one shown. */
function bar(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('[data-testid="room-tab"]')).map((b) => [
    b.dataset.room,
    b.getAttribute('aria-label'),
    b.getAttribute('aria-current') === 'true',
  ]));
}

/** Waits until the room bar is `want` (as `bar` reads it). */
async function waitBar(page, want) {
  try {
    await page.waitForFunction((w) => JSON.stringify(Array.from(document.querySelectorAll('[data-testid="room-tab"]')).map((b) => [
      b.dataset.room,
      b.getAttribute('aria-label'),
      b.getAttribute('aria-current') === 'true',
    ])) === JSON.stringify(w), want);
  } catch (e) {
    assertEq(await bar(page), want, 'the room bar');
  }
}

const tab = (room) => `[data-testid="room-tab"][data-room="${room}"]`;

run('rooms side by side', async (browser) => {
  const a = uniqueRoom('a');
  const b = uniqueRoom('b');
  const alice = await person(browser, 'alice', a);
  await waitBar(alice, [[a, a, true]]);

  // ---- "+ Room": the join form, the room field to type in, and b beside a
  await alice.click('[data-testid="add-room"]');
  await alice.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  await expectFocus(alice, '[data-testid="join-room"]');
  assertEq(await alice.inputValue('[data-testid="join-name"]'), 'alice', 'the name is kept');
  await alice.fill('[data-testid="join-room"]', b);
  await alice.press('[data-testid="join-room"]', 'Enter');
  await waitOnline(alice);
  await waitBar(alice, [[a, a, false], [b, b, true]]);
  assertEq(await alice.textContent('[data-testid="room-name"]'), b, 'b is shown');

  // ---- a's list long enough to scroll, then read from its top
  await alice.focus(tab(a));
  await alice.keyboard.press('Enter');
  await waitBar(alice, [[a, a, true], [b, b, false]]);
  assertEq(await alice.textContent('[data-testid="room-name"]'), a, 'a is shown');
  for (let i = 1; i <= 25; i++) await say(alice, 'line ' + i + ' in a');
  await waitMessage(alice, 'alice', 'line 25 in a');
  await alice.evaluate(() => {
    const list = document.querySelector('[data-testid="messages"]');
    list.scrollTop = 0;
  });
  await alice.waitForFunction(() => document.querySelector('[data-testid="messages"]').scrollTop === 0);
  const tall = await alice.evaluate(() => {
    const list = document.querySelector('[data-testid="messages"]');
    return list.scrollHeight > list.clientHeight + 100;
  });
  assert(tall, "a's list scrolls");

  // ---- bob talks in b while a is shown: b's button counts it
  const bob = await person(browser, 'bob', b);
  await say(bob, 'hello b');
  await say(bob, '@alice are you there');
  await waitBar(alice, [[a, a, true], [b, b + ', 2 unread, 1 mention', false]]);
  // The name assistive technology is given, as the browser computes it.
  await alice.getByRole('button', { name: b + ', 2 unread, 1 mention', exact: true }).waitFor();
  const shownA = await alice.evaluate(() => Array.from(document.querySelectorAll('[data-testid="message-text"]')).map((t) => t.textContent));
  assert(!shownA.includes('hello b'), "b's messages are not in a's list");
  assertEq(await alice.title(), '#' + a + ' · wschat', 'the title is the room shown');

  // ---- showing b: its messages, the count gone
  await alice.focus(tab(b));
  await alice.keyboard.press('Enter');
  await waitBar(alice, [[a, a, false], [b, b, true]]);
  await waitMessage(alice, 'bob', 'hello b');
  await waitMessage(alice, 'bob', '@alice are you there');
  await waitPresence(alice, ['alice', 'bob']);
  await alice.waitForSelector('[data-testid="unread-divider"]');
  await expectFocus(alice, '[data-testid="message-input"]');
  await say(alice, 'here, in b');
  await waitMessage(bob, 'alice', 'here, in b');

  // ---- back to a: where alice was reading, and nothing of b's
  await alice.click(tab(a));
  await waitBar(alice, [[a, a, true], [b, b, false]]);
  assertEq(await alice.evaluate(() => document.querySelector('[data-testid="messages"]').scrollTop), 0, "a's list is where it was left");
  await waitPresence(alice, ['alice']);
  await alice.click(tab(b));
  await waitBar(alice, [[a, a, false], [b, b, true]]);

  // ---- a reload brings both rooms back, b shown
  await alice.reload();
  await waitOnline(alice);
  await waitBar(alice, [[a, a, false], [b, b, true]]);
  await waitMessage(alice, 'bob', 'hello b');
  await alice.click(tab(a));
  await waitMessage(alice, 'alice', 'line 25 in a');
  await waitOnline(alice);

  // ---- leaving b closes only b's connection: bob sees her go, a goes on
  await alice.click(tab(b));
  await waitBar(alice, [[a, a, false], [b, b, true]]);
  await alice.click('[data-testid="leave-button"]');
  await waitBar(alice, [[a, a, true]]);
  await waitPresence(bob, ['bob']);
  assertEq(await alice.textContent('[data-testid="room-name"]'), a, 'a is shown');
  const carol = await person(browser, 'carol', a);
  await say(carol, 'still here in a');
  await waitMessage(alice, 'carol', 'still here in a');
  await waitPresence(alice, ['alice', 'carol']);
  await waitOnline(alice);

  // ---- and a reload now brings back a alone
  await alice.reload();
  await waitOnline(alice);
  await waitBar(alice, [[a, a, true]]);
  await say(alice, 'back in a');
  await waitMessage(carol, 'alice', 'back in a');
});
