// Two pages on two wschat instances that share their rooms through one
// Redis, both behind one nginx (run as `node cluster_reset.mjs NGINX COOKIE
// PIN_A PIN_B A B`: nginx's address, the cookie that pins a browser to an
// instance, its value for instance A and for B, and the instances' own
// addresses, where the script reads their /metrics). Alice's browser is
// pinned to A, Bob's to B. They chat across the instances; Redis is
// restarted without persistence, and both pages come back and say that the
// history was reset, then chat again; Redis stops answering while Alice
// sends, and her message waits and goes once.
import {
  run, person, say, waitMessage, waitPresence, uniqueRoom, socketSpy, serverControl, waitRejoined,
  shownTexts, pendingTexts, assert, assertEq, addr, WATCHDOG_MS,
} from './lib.mjs';

const [cookie, pinA, pinB, instanceA, instanceB] = process.argv.slice(3);
if (!instanceB) {
  console.error('usage: node cluster_reset.mjs NGINX COOKIE PIN_A PIN_B A B');
  process.exit(2);
}

/** The instance's metric `name` (with its labels), read from its /metrics. */
async function metric(instance, name) {
  const text = await (await fetch(`http://${instance}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

const V1 = 'wschat_connections{mode="v1"}';
const RESETS = 'wschat_disconnects_total{code="1012"}';

/** Polls `check` (async, true when done) until it holds; fails after the watchdog. */
async function waitFor(what, check) {
  const deadline = Date.now() + WATCHDOG_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => { setTimeout(resolve, 50); });
  }
}

/** Waits until A holds `a` chat sockets and B holds `b`. */
async function waitSockets(a, b) {
  let seen = [];
  await waitFor(`${a} page(s) on A and ${b} on B`, async () => {
    seen = [await metric(instanceA, V1), await metric(instanceB, V1)];
    return seen[0] === a && seen[1] === b;
  }).catch((e) => { throw new Error(`${e.message}; the instances hold ${JSON.stringify(seen)}`); });
}

/** Both pages show exactly `texts` ([from, text], in order), with nothing waiting. */
async function bothShow(pages, texts, what) {
  for (const [who, page] of pages) {
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="message"][data-kind="text"]').length >= n
      && document.querySelectorAll('[data-testid="pending-message"]').length === 0, texts.length);
    assertEq(await shownTexts(page), texts, `${who}: ${what}`);
  }
}

run('pages on two instances get through a Redis restart', async (browser) => {
  const room = uniqueRoom('cluster');
  const pinned = (pin) => ({ initScript: socketSpy, cookies: { [cookie]: pin } });
  const alice = await person(browser, 'alice', room, pinned(pinA));
  await waitSockets(1, 0);
  const bob = await person(browser, 'bob', room, pinned(pinB));
  await waitSockets(1, 1);
  const pages = [['alice', alice], ['bob', bob]];
  for (const [who, page] of pages) {
    const url = await page.evaluate(() => window.__sockets.at(-1).url);
    assertEq(url, `ws://${addr}/ws`, `${who}'s socket goes through nginx`);
  }

  // Across the instances: presence, and messages both ways.
  await waitPresence(alice, ['alice', 'bob']);
  await waitPresence(bob, ['alice', 'bob']);
  await say(alice, 'one');
  await waitMessage(bob, 'alice', 'one');
  await say(bob, 'two');
  await bothShow(pages, [['alice', 'one'], ['bob', 'two']], 'the messages from before, once each');

  // Redis restarts without persistence: every room's history is gone.
  const before = {};
  for (const [who, page] of pages) {
    before[who] = await page.evaluate(() => ({ sockets: window.__sockets.length, epoch: window.__welcome.epoch }));
  }
  await serverControl('redis restart');
  for (const [who, page] of pages) {
    await waitRejoined(page, before[who].sockets);
    const { closes, welcome, joins } = await page.evaluate(() => ({
      closes: window.__closes,
      welcome: window.__welcome,
      joins: window.__sent.filter((f) => f.type === 'join'),
    }));
    // The socket that was open is the one the server closed, saying why.
    const ended = closes.find((c) => c.socket === before[who].sockets - 1);
    assertEq(ended && [ended.code, ended.reason], [1012, 'history reset'], `${who}: the instance closed the socket with 1012`);
    // The join that got in resumed from what the page had.
    const resumed = joins.at(-1);
    assert(Number.isInteger(resumed.since) && resumed.since >= 2, `${who} resumed with since: ${JSON.stringify(resumed)}`);
    assertEq(resumed.epoch, before[who].epoch, `${who} resumed with the epoch it had`);
    assertEq([welcome.recovered, welcome.reason], [false, 'epoch'], `${who}: not recovered, for the epoch`);
    assert(welcome.epoch !== before[who].epoch, `${who}: the room has another epoch`);
    const note = await page.waitForSelector('[data-testid="messages"] [data-testid="note"][data-kind="reset"]');
    assert(/reset the history/i.test(await note.textContent()), `${who}: the log says the history was reset: ${await note.textContent()}`);
    assertEq(await shownTexts(page), [], `${who}: nothing from before is shown`);
    console.log(`${who}: closed with 1012, ${joins.length - 1} join(s) later back in, told the history was reset`);
  }
  // Each page came back to its own instance, which is the one that closed it.
  await waitSockets(1, 1);
  assertEq([await metric(instanceA, RESETS), await metric(instanceB, RESETS)], [1, 1], 'each instance closed one page with 1012');

  await say(bob, 'fresh start');
  await waitMessage(alice, 'bob', 'fresh start');
  await say(alice, 'indeed');
  await bothShow(pages, [['bob', 'fresh start'], ['alice', 'indeed']], 'the new messages, once each');
  for (const [who, page] of pages) {
    assertEq(await page.locator('[data-testid="note"][data-kind="reset"]').count(), 1, `${who}: said once`);
  }

  // Redis stops answering while Alice sends: her message is refused as
  // unavailable, waits on her page and goes again, with the same cid.
  const heard = await alice.evaluate(() => window.__received.length);
  await serverControl('redis pause');
  await say(alice, 'during');
  const cid = await alice.evaluate(() => window.__sent.find((f) => f.type === 'message' && f.text === 'during').cid);
  await alice.waitForFunction((n) => window.__received.slice(n).some((m) => m.type === 'error'), heard);
  const refusal = await alice.evaluate((n) => window.__received.slice(n).find((m) => m.type === 'error'), heard);
  assertEq([refusal.code, refusal.cid], ['unavailable', cid], 'the refusal names the message');
  const waiting = await pendingTexts(alice);
  assertEq(waiting.map(([text]) => text), ['during'], 'the refused message waits on the page');
  assert(['retrying', 'sending'].includes(waiting[0][1]), `it waits to go again: ${JSON.stringify(waiting)}`);
  await alice.waitForFunction(() => window.__sent.filter((f) => f.type === 'message' && f.text === 'during').length >= 2);
  await serverControl('redis resume');

  await bothShow(pages, [['bob', 'fresh start'], ['alice', 'indeed'], ['alice', 'during']], 'the refused message, once');
  const sent = await alice.evaluate(() => window.__sent.filter((f) => f.type === 'message' && f.text === 'during'));
  assert(sent.every((f) => f.cid === cid), `sent again with the same cid: ${JSON.stringify(sent)}`);
  console.log(`'during' went ${sent.length} times with one cid; ${await alice.evaluate(
    (n) => window.__received.slice(n).filter((m) => m.type === 'error' && m.code === 'unavailable').length,
    heard,
  )} refused as unavailable`);
  // Nothing more is on its way: a message said last is the next one shown.
  await say(bob, 'after');
  await bothShow(pages, [['bob', 'fresh start'], ['alice', 'indeed'], ['alice', 'during'], ['bob', 'after']], 'everything once, in order');
  assertEq(await alice.evaluate(() => document.querySelector('[data-testid="status"]').dataset.state), 'online', 'alice stayed online');
});
