// A dropped connection is re-opened by itself and resumes with `since`.
import { run, person, say, waitMessage, waitOnline, uniqueRoom, assertEq } from './lib.mjs';

// Test-only instrumentation: remember sockets and the text frames sent.
const spy = () => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__sent = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
    }
    send(data) {
      if (typeof data === 'string') window.__sent.push(data);
      return super.send(data);
    }
  };
};

run('reconnect resumes with since', async (browser) => {
  const room = uniqueRoom('reconnect');
  const alice = await person(browser, 'alice', room, { initScript: spy });
  const bob = await person(browser, 'bob', room);
  await say(bob, 'before the drop');
  await waitMessage(alice, 'bob', 'before the drop');
  const lastId = Number(await alice.getAttribute('[data-testid="message"][data-from="bob"]', 'data-id'));

  // Drop alice's connection.
  await alice.evaluate(() => window.__sockets[window.__sockets.length - 1].close());
  await alice.waitForSelector('[data-testid="status"]:not([data-state="online"])');
  await say(bob, 'while you were away');
  await waitMessage(bob, 'bob', 'while you were away');

  await waitOnline(alice);
  await waitMessage(alice, 'bob', 'while you were away');
  const joins = await alice.evaluate(() => window.__sent.map((s) => JSON.parse(s)).filter((m) => m.type === 'join'));
  assertEq(joins.length, 2, 'one join per connection');
  assertEq(joins[1].since, lastId, 'second join resumes after the last message seen');
  const texts = await alice.evaluate(() => Array.from(document.querySelectorAll('[data-testid="message-text"]')).map((e) => e.textContent));
  assertEq(texts, ['before the drop', 'while you were away'], 'every message exactly once');
});
