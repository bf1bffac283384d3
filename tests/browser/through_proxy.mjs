// The chat page works through nginx (run with nginx's address): the page is
// served by nginx, its WebSocket goes to nginx's address, and two people in
// one room see each other's messages and each other in the presence list.
import { run, person, say, waitMessage, waitPresence, uniqueRoom, assert, assertEq, addr, socketSpy } from './lib.mjs';

run('page through nginx', async (browser) => {
  const room = uniqueRoom('proxy');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room, { initScript: socketSpy });

  // The page and its socket both came through the proxy.
  const server = await alice.evaluate(async () => (await fetch('/', { cache: 'no-store' })).headers.get('server'));
  assert(/^nginx/.test(server || ''), `the page is served by nginx (Server: ${server})`);
  const socket = await alice.evaluate(() => {
    const s = window.__sockets[window.__sockets.length - 1];
    return { url: s.url, open: s.readyState === WebSocket.OPEN, protocol: s.protocol };
  });
  assertEq(socket, { url: `ws://${addr}/ws`, open: true, protocol: 'wschat.v1' }, "alice's socket is open through nginx");

  await waitPresence(alice, ['alice', 'bob']);
  await waitPresence(bob, ['alice', 'bob']);
  await say(alice, 'hello through the proxy');
  await waitMessage(bob, 'alice', 'hello through the proxy');
  await say(bob, 'heard you, alice');
  await waitMessage(alice, 'bob', 'heard you, alice');
});
