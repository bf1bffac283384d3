// A message whose confirmation never reached the page (the connection went
// after the server had stored it) is sent again on the next connection with
// the same cid, and still delivered exactly once: the server answers the
// resend with the stored message instead of delivering it again.
import {
  run, openPage, join, person, say, waitMessage, addr, uniqueRoom, socketSpy, holdableRelay, waitRejoined, shownTexts,
  pendingTexts, assert, assertEq,
} from './lib.mjs';

run('a resent message is delivered once', async (browser) => {
  const room = uniqueRoom('resend');
  const relay = await holdableRelay(addr);
  try {
    // Alice reaches the server through the relay; bob directly.
    const alice = await openPage(browser, { label: 'alice', initScript: socketSpy });
    await alice.goto(`http://${relay.addr}/`);
    await join(alice, 'alice', room);
    const bob = await person(browser, 'bob', room);
    await say(bob, 'hello');
    await waitMessage(alice, 'bob', 'hello');

    // Nothing from the server reaches alice any more: her message goes out
    // and is delivered, but its confirmation cannot come back.
    relay.hold();
    await say(alice, 'only once');
    await waitMessage(bob, 'alice', 'only once');
    assertEq((await pendingTexts(alice)).map(([t, s]) => [t, s]), [['only once', 'sending']], 'alice still waits for the confirmation');
    const sockets = await alice.evaluate(() => window.__sockets.length);

    // The connection goes; the page comes back by itself and sends it again.
    relay.cut();
    await waitRejoined(alice, sockets);
    await alice.waitForFunction(() => document.querySelectorAll('[data-testid="pending-message"]').length === 0);
    const sent = await alice.evaluate(() => window.__sent.filter((f) => f.type === 'message' && f.text === 'only once'));
    assertEq(sent.length, 2, 'sent on both connections');
    assert(typeof sent[0].cid === 'string' && sent[0].cid === sent[1].cid, `with the same cid: ${JSON.stringify(sent)}`);

    // Anything delivered twice would come before this.
    await say(alice, 'after');
    const want = [['bob', 'hello'], ['alice', 'only once'], ['alice', 'after']];
    for (const [who, page] of [['alice', alice], ['bob', bob]]) {
      await waitMessage(page, 'alice', 'after');
      assertEq(await shownTexts(page), want, `${who} shows it once`);
    }
  } finally {
    relay.close();
  }
});
