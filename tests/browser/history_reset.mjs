// A server that keeps its history only in memory (`--db :memory:`) starts
// it again when restarted. The pages learn it from the welcome (another
// epoch: `recovered:false`, `reason:"epoch"`): each says in its log that the
// server reset the history, shows none of the messages from before, and
// the chat starts clean, its new ids (which start again at 1) not taken for
// messages already shown.
import {
  run, person, say, waitMessage, uniqueRoom, socketSpy, serverControl, waitRejoined, shownTexts, assert, assertEq,
} from './lib.mjs';

run('history reset by the server is said', async (browser) => {
  const room = uniqueRoom('reset');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room, { initScript: socketSpy });
  await say(alice, 'one');
  await say(bob, 'two');
  await waitMessage(alice, 'bob', 'two');
  await waitMessage(bob, 'alice', 'one');
  const before = await alice.evaluate(() => window.__welcome.epoch);
  const sockets = { alice: await alice.evaluate(() => window.__sockets.length), bob: await bob.evaluate(() => window.__sockets.length) };

  await serverControl('restart');
  for (const [who, page, n] of [['alice', alice, sockets.alice], ['bob', bob, sockets.bob]]) {
    await waitRejoined(page, n);
    const welcome = await page.evaluate(() => window.__welcome);
    assert(welcome.epoch !== before, `${who}: the restarted server has another epoch`);
    assertEq([welcome.recovered, welcome.reason], [false, 'epoch'], `${who}: not recovered, for the epoch`);
    const note = await page.waitForSelector('[data-testid="messages"] [data-testid="note"][data-kind="reset"]');
    assert(/reset the history/i.test(await note.textContent()), `${who}: the log says the history was reset: ${await note.textContent()}`);
    assertEq(await shownTexts(page), [], `${who}: nothing from before is shown`);
  }

  await say(bob, 'fresh start');
  await say(alice, 'indeed');
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    await waitMessage(page, 'alice', 'indeed');
    assertEq(await shownTexts(page), [['bob', 'fresh start'], ['alice', 'indeed']], `${who} shows the new messages, once each`);
    assertEq(await page.locator('[data-testid="note"][data-kind="reset"]').count(), 1, `${who}: said once`);
  }
});
