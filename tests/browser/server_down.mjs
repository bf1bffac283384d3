// While the server is down, a message sent waits on the page, marked as not
// sent; when the server is back it is delivered exactly once, and the other
// person, who was waiting too, gets it once.
import {
  run, person, say, waitMessage, uniqueRoom, socketSpy, serverControl, waitRejoined, shownTexts, pendingTexts,
  assert, assertEq,
} from './lib.mjs';

const INPUT = '[data-testid="message-input"]';

run('a message sent while the server is down arrives once', async (browser) => {
  const room = uniqueRoom('down');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room, { initScript: socketSpy });
  await say(bob, 'still there?');
  await waitMessage(alice, 'bob', 'still there?');
  const sockets = { alice: await alice.evaluate(() => window.__sockets.length), bob: await bob.evaluate(() => window.__sockets.length) };

  await serverControl('stop');
  for (const page of [alice, bob]) await page.waitForSelector('[data-testid="status"]:not([data-state="online"])');

  await alice.fill(INPUT, 'sent while the server was down');
  await alice.press(INPUT, 'Enter');
  assertEq(await alice.inputValue(INPUT), '', 'the box empties');
  const waiting = await pendingTexts(alice);
  assertEq(waiting.map(([t, s]) => [t, s]), [['sent while the server was down', 'queued']], 'the message waits, not sent');

  await serverControl('start');
  await waitRejoined(alice, sockets.alice);
  await waitRejoined(bob, sockets.bob);
  await waitMessage(bob, 'alice', 'sent while the server was down');
  await alice.waitForFunction(() => document.querySelectorAll('[data-testid="pending-message"]').length === 0);

  // Anything delivered twice would come before this.
  await say(bob, 'got it');
  const want = [['bob', 'still there?'], ['alice', 'sent while the server was down'], ['bob', 'got it']];
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    await waitMessage(page, 'bob', 'got it');
    assertEq(await shownTexts(page), want, `${who} shows it once`);
  }
  const frames = await alice.evaluate(() => window.__sent.filter((f) => f.type === 'message'));
  assertEq(frames.length, 1, 'sent once: it was never put on a connection that was down');
  assert(typeof frames[0].cid === 'string' && frames[0].cid.length > 0, `it carries a cid: ${JSON.stringify(frames[0])}`);
  const mine = await alice.getAttribute('[data-testid="message"][data-from="alice"]', 'data-cid');
  assertEq(mine, frames[0].cid, 'the message shown as sent is the one confirmed by its cid');
});
