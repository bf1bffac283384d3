// Two people chat while the server is restarted under them on the same
// database. Both pages resume where they were (`since` and `epoch`, answered
// `recovered`), and every message from then on shows on both exactly once,
// in order, without a reload.
import {
  run, person, say, waitMessage, uniqueRoom, socketSpy, serverControl, waitRejoined, shownTexts, assert, assertEq,
} from './lib.mjs';

run('history survives a server restart', async (browser) => {
  const room = uniqueRoom('restart');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room, { initScript: socketSpy });
  await say(alice, 'before the restart');
  await say(bob, 'me too');
  await waitMessage(alice, 'bob', 'me too');
  await waitMessage(bob, 'alice', 'before the restart');
  const first = await alice.evaluate(() => window.__welcome);
  const lastBefore = await alice.evaluate(() => Math.max(...Array.from(document.querySelectorAll('[data-testid="message"]'), (b) => Number(b.dataset.id))));
  const sockets = { alice: await alice.evaluate(() => window.__sockets.length), bob: await bob.evaluate(() => window.__sockets.length) };

  await serverControl('restart');
  await waitRejoined(alice, sockets.alice);
  await waitRejoined(bob, sockets.bob);

  // Alice resumed from what she had shown, in the history she knew, and the
  // server says nothing was missed.
  const joins = await alice.evaluate(() => window.__sent.filter((f) => f.type === 'join'));
  const resumed = joins.at(-1);
  assertEq([resumed.since, resumed.epoch], [lastBefore, first.epoch], 'the join resumes from the last id shown, in its epoch');
  const welcome = await alice.evaluate(() => window.__welcome);
  assertEq([welcome.epoch, welcome.recovered], [first.epoch, true], 'same history, recovered');

  // The chat goes on: each message once, on both pages, in order.
  await say(alice, 'after one');
  await waitMessage(bob, 'alice', 'after one');
  await say(bob, 'after two');
  await waitMessage(alice, 'bob', 'after two');
  await say(alice, 'after three');
  const want = [['alice', 'before the restart'], ['bob', 'me too'], ['alice', 'after one'], ['bob', 'after two'], ['alice', 'after three']];
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    await waitMessage(page, 'alice', 'after three');
    assertEq(await shownTexts(page), want, `${who} shows every message once, in order`);
    const ids = await page.evaluate(() => Array.from(document.querySelectorAll('[data-testid="message"]'), (b) => Number(b.dataset.id)));
    assert(ids.every((id, i) => i === 0 || id > ids[i - 1]), `${who}: ids keep rising across the restart: ${ids}`);
    assertEq(await page.locator('[data-testid="note"][data-kind="reset"]').count(), 0, `${who}: no reset said`);
    assertEq(await page.locator('[data-testid="pending-message"]').count(), 0, `${who}: nothing left waiting`);
  }
});
