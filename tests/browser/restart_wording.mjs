// The page tells a restart from a stop. The operator restarts the server
// (SIGHUP: close 1012 `server restarting`): both pages say "Server
// restarting", come back, and neither announces the other as having joined
// again, while someone new who joins afterwards still is (and the room,
// which had no messages, is not said to have lost its history). Then the operator
// stops it (SIGTERM: close 1001): the pages say "Server stopped" and never
// call it a restart, and come back once it is started again.
import {
  run, openPage, join, waitPresence, uniqueRoom, socketSpy, serverControl, waitRejoined, person, assert, assertEq,
} from './lib.mjs';

/** Records every text the status line shows (without its countdown), in `__statuses`. */
const statusSpy = () => {
  window.__statuses = [];
  document.addEventListener('DOMContentLoaded', () => {
    const text = document.getElementById('status-text');
    new MutationObserver(() => window.__statuses.push(text.textContent))
      .observe(text, { subtree: true, childList: true, characterData: true });
  });
};
const spies = { content: `(${socketSpy})(); (${statusSpy})();` };

/** The "NAME joined" notes the page shows. */
function joinNotes(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('[data-testid="note"][data-kind="join"]'), (n) => n.firstChild.textContent));
}

/** Waits until the events received since the `from`th tell the page that `name` is here. */
async function waitToldHere(page, from, name) {
  await page.waitForFunction(([k, who]) => window.__received.slice(k).some((e) => (e.type === 'presence' && e.users.includes(who))
    || (e.type === 'join' && e.name === who)), [from, name]);
}

/** How many `join` events the page received since the `from`th. */
function joinsSince(page, from) {
  return page.evaluate((k) => window.__received.slice(k).filter((e) => e.type === 'join').length, from);
}

/** The `n` and the sockets' count now, to look at what comes after. */
function mark(page) {
  return page.evaluate(() => ({ received: window.__received.length, sockets: window.__sockets.length, statuses: window.__statuses.length }));
}

function statusesSince(page, from) {
  return page.evaluate((k) => window.__statuses.slice(k), from);
}

run('a restart and a stop are told apart', async (browser) => {
  const room = uniqueRoom('wording');
  const alice = await openPage(browser, { label: 'alice', initScript: spies });
  await join(alice, 'alice', room);
  const bob = await openPage(browser, { label: 'bob', initScript: spies });
  await join(bob, 'bob', room);
  await waitPresence(alice, ['alice', 'bob']);
  assertEq(await joinNotes(alice), ['bob joined'], 'alice saw bob arrive');
  assertEq(await joinNotes(bob), [], 'alice was there before bob');

  // ---- the operator restarts the server
  const before = { alice: await mark(alice), bob: await mark(bob) };
  await serverControl('restart');
  await waitRejoined(alice, before.alice.sockets);
  await waitRejoined(bob, before.bob.sockets);
  await waitToldHere(alice, before.alice.received, 'bob');
  await waitToldHere(bob, before.bob.received, 'alice');
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    const closes = await page.evaluate((k) => window.__closes.filter((c) => c.socket === k - 1), before[who].sockets);
    assertEq(closes.map((c) => [c.code, c.reason]), [[1012, 'server restarting']], `${who}'s socket was closed as a restart`);
    const statuses = await statusesSince(page, before[who].statuses);
    assert(statuses.includes('Server restarting'), `${who} said the server is restarting: ${JSON.stringify(statuses)}`);
    assert(!statuses.some((s) => /stopped/i.test(s)), `${who} never said stopped: ${JSON.stringify(statuses)}`);
  }
  // Whoever came back second was announced to the other by the server; the
  // page knows them from before and does not say they joined.
  const joinsHeard = await joinsSince(alice, before.alice.received) + await joinsSince(bob, before.bob.received);
  assert(joinsHeard >= 1, 'one page heard the other join again');
  assertEq(await joinNotes(alice), ['bob joined'], 'alice does not see bob join again');
  assertEq(await joinNotes(bob), [], 'bob does not see alice join again');
  assertEq(await alice.locator('[data-testid="note"][data-kind="ok"]').count(), 1, 'alice says she reconnected');
  // The room had no messages: a new history has nothing to take away.
  assertEq(await alice.locator('[data-testid="note"][data-kind="reset"]').count(), 0, 'no history reset is said');

  // Someone new is still announced.
  const carol = await person(browser, 'carol', room);
  for (const page of [alice, bob]) {
    await waitPresence(page, ['alice', 'bob', 'carol']);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('[data-testid="note"][data-kind="join"]')).some((n) => n.firstChild.textContent === 'carol joined'));
  }
  await carol.context().close();
  await waitPresence(alice, ['alice', 'bob']);

  // ---- the operator stops the server
  const stop = { alice: await mark(alice), bob: await mark(bob) };
  await serverControl('stop');
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    await page.waitForFunction(() => document.getElementById('status-text').textContent === 'Server stopped');
    const notice = await page.textContent('[data-testid="composer-notice-text"]');
    assert(/has shut down/.test(notice) && !/restart/i.test(notice), `${who}'s notice does not promise a restart: ${notice}`);
    const closes = await page.evaluate((k) => window.__closes.filter((c) => c.socket === k - 1), stop[who].sockets);
    assertEq(closes.map((c) => [c.code, c.reason]), [[1001, 'server shutting down']], `${who}'s socket was closed as a stop`);
  }
  await serverControl('start');
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    await waitRejoined(page, stop[who].sockets);
    const statuses = await statusesSince(page, stop[who].statuses);
    assert(!statuses.some((s) => /restarting/i.test(s)), `${who} never called the stop a restart: ${JSON.stringify(statuses)}`);
  }
  await waitToldHere(alice, stop.alice.received, 'bob');
  await waitToldHere(bob, stop.bob.received, 'alice');
  assertEq(await joinNotes(alice), ['bob joined', 'carol joined'], 'alice: no join again after the stop either');
  assertEq(await joinNotes(bob), ['carol joined'], 'bob: no join again after the stop either');
});
