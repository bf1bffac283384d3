// Offline, the page says so and why above the composer, and shows who is in
// the room as unknown. What is sent meanwhile is not kept in the box: it is
// shown at once, marked as not sent yet, kept across a reload of the tab,
// and sent in order once the page is back, each message exactly once.
import {
  run, person, uniqueRoom, waitOnline, waitMessage, waitPresence, socketSpy, setBlocked, shownTexts, pendingTexts,
  assert, assertEq,
} from './lib.mjs';

const NOTICE = '[data-testid="composer-notice"]';
const NOTICE_TEXT = '[data-testid="composer-notice-text"]';
const INPUT = '[data-testid="message-input"]';

run('offline is said, what is sent meanwhile waits and goes once', async (browser) => {
  const room = uniqueRoom('offline');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room);
  await waitPresence(alice, ['alice', 'bob']);

  // Something the server refuses leaves a toast on this connection.
  await alice.evaluate(() => window.__sockets.at(-1).send(JSON.stringify({ type: 'no-such-thing' })));
  await alice.waitForSelector('[data-testid="error"]');

  // The network goes: the connection drops and new ones fail.
  await setBlocked(alice, true);
  await alice.waitForSelector('[data-testid="status"][data-state="offline"]');
  await alice.waitForSelector(`${NOTICE}[data-kind="offline"]`);
  const said = await alice.textContent(NOTICE_TEXT);
  assert(/not connected: .*lost/i.test(said), `the composer says it is offline, and why: ${said}`);
  assert(/will be sent when you are back/i.test(said), `and that what is sent now goes later: ${said}`);

  // Who is here is unknown now.
  assertEq(await alice.textContent('[data-testid="people-count"]'), '?', 'no head count while offline');
  assert(/unknown/i.test(await alice.textContent('[data-testid="presence-note"]')), 'presence is marked unknown');

  // Enter queues the message: the box empties and the message shows, not sent.
  await alice.fill(INPUT, 'first while offline');
  await alice.press(INPUT, 'Enter');
  assertEq(await alice.inputValue(INPUT), '', 'the box is free for the next message');
  await alice.fill(INPUT, 'second while offline');
  await alice.press(INPUT, 'Enter');
  const queued = await pendingTexts(alice);
  assertEq(queued.map(([t, s]) => [t, s]), [['first while offline', 'queued'], ['second while offline', 'queued']], 'both wait, in order');
  assert(queued.every(([, , says]) => /not sent yet/i.test(says)), `each says it is not sent yet: ${JSON.stringify(queued)}`);
  assert(/2 messages are waiting/.test(await alice.textContent(NOTICE_TEXT)), `the notice counts them: ${await alice.textContent(NOTICE_TEXT)}`);
  assert(await alice.locator('[data-testid="error"]').count() > 0, 'the old toast is still up while offline');

  // A reload of the tab, still offline, keeps them.
  await alice.reload();
  await alice.waitForSelector('[data-testid="status"][data-state="offline"]');
  assertEq((await pendingTexts(alice)).map(([t, s]) => [t, s]), [['first while offline', 'queued'], ['second while offline', 'queued']], 'still waiting after the reload');
  assertEq(await alice.inputValue(INPUT), '', 'and not put back in the box');

  // The network is back: reconnect now (or whenever the page retries).
  await setBlocked(alice, false);
  const button = alice.locator('[data-testid="reconnect-now"]');
  if (await button.isVisible()) await button.click().catch(() => {});
  await waitOnline(alice);
  await waitMessage(bob, 'alice', 'second while offline');
  await alice.waitForFunction(() => document.querySelectorAll('[data-testid="pending-message"]').length === 0);
  assertEq(await alice.locator('[data-testid="error"]').count(), 0, "the previous connection's toasts are cleared");
  assertEq(await alice.textContent(NOTICE_TEXT), '', 'no notice once back');
  assertEq(await alice.textContent('[data-testid="people-count"]'), '2', 'head count known again');
  assert(await alice.isHidden('[data-testid="presence-note"]'), 'presence known again');

  // Each arrived once, in order, and alice shows them as sent, with their ids.
  const want = [['alice', 'first while offline'], ['alice', 'second while offline']];
  const bobSees = (await shownTexts(bob)).filter(([f]) => f === 'alice');
  assertEq(bobSees, want, 'bob got each once, in order');
  await waitMessage(alice, 'alice', 'second while offline');
  assertEq(await shownTexts(alice), want, 'alice shows each once, as sent');
  const ids = await alice.evaluate(() => Array.from(document.querySelectorAll('[data-testid="message"][data-from="alice"]')).map((b) => Number(b.dataset.id)));
  assert(ids.length === 2 && ids.every(Number.isInteger) && ids[0] < ids[1], `sent messages carry their ids: ${ids}`);

  // And nothing more: a message sent now follows them, once.
  await alice.fill(INPUT, 'back online');
  await alice.press(INPUT, 'Enter');
  await waitMessage(bob, 'alice', 'back online');
  assertEq((await shownTexts(bob)).filter(([f]) => f === 'alice'), [...want, ['alice', 'back online']], 'no message twice');
});
