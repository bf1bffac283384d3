// Offline, the page says so and why above the composer, keeps what is typed
// (Enter says it was not sent), and shows who is in the room as unknown.
// Back online, notices from the previous connection are gone and the kept
// text can be sent.
import { run, person, uniqueRoom, waitOnline, waitMessage, waitPresence, socketSpy, assert, assertEq } from './lib.mjs';

const NOTICE = '[data-testid="composer-notice"]';
const NOTICE_TEXT = '[data-testid="composer-notice-text"]';
const INPUT = '[data-testid="message-input"]';

run('offline is said, typed text kept', async (browser) => {
  const room = uniqueRoom('offline');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room);
  await waitPresence(alice, ['alice', 'bob']);

  // Something the server refuses leaves a toast on this connection.
  await alice.evaluate(() => window.__sockets.at(-1).send(JSON.stringify({ type: 'no-such-thing' })));
  await alice.waitForSelector('[data-testid="error"]');

  // The network goes: the connection drops and new ones fail.
  await alice.evaluate(() => {
    window.__block = true;
    window.__sockets.at(-1).close();
  });
  await alice.waitForSelector('[data-testid="status"][data-state="offline"]');
  await alice.waitForSelector(`${NOTICE}[data-kind="offline"]`);
  const said = await alice.textContent(NOTICE_TEXT);
  assert(/not connected: .*lost/i.test(said), `the composer says it is offline, and why: ${said}`);
  assert(/what you type stays/i.test(said), `and that typing is kept: ${said}`);

  // Who is here is unknown now.
  assertEq(await alice.textContent('[data-testid="people-count"]'), '?', 'no head count while offline');
  assert(/unknown/i.test(await alice.textContent('[data-testid="presence-note"]')), 'presence is marked unknown');

  // Typing goes on; Enter keeps the text and says it was not sent.
  await alice.fill(INPUT, 'typed while offline');
  await alice.press(INPUT, 'Enter');
  assertEq(await alice.inputValue(INPUT), 'typed while offline', 'the text is kept');
  assert(/not sent/i.test(await alice.textContent(NOTICE_TEXT)), `Enter says it was not sent: ${await alice.textContent(NOTICE_TEXT)}`);
  assert(await alice.locator('[data-testid="error"]').count() > 0, 'the old toast is still up while offline');

  // The network is back: reconnect now (or whenever the page retries).
  await alice.evaluate(() => { window.__block = false; });
  const button = alice.locator('[data-testid="reconnect-now"]');
  if (await button.isVisible()) await button.click().catch(() => {});
  await waitOnline(alice);
  assertEq(await alice.locator('[data-testid="error"]').count(), 0, "the previous connection's toasts are cleared");
  assertEq(await alice.textContent(NOTICE_TEXT), '', 'no notice once back');
  assertEq(await alice.textContent('[data-testid="people-count"]'), '2', 'head count known again');
  assert(await alice.isHidden('[data-testid="presence-note"]'), 'presence known again');
  assertEq(await alice.inputValue(INPUT), 'typed while offline', 'the text survived the reconnect');
  await alice.press(INPUT, 'Enter');
  await waitMessage(bob, 'alice', 'typed while offline');
});
