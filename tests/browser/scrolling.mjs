// A reader at the newest message stays there, also when an image and then a
// file arrive and finish loading after they were added, and while an upload's
// progress row takes room under the list; a reader further up is left where
// they are and gets a "new messages" button instead.
import { run, person, say, waitMessage, uniqueRoom, makePng, assert } from './lib.mjs';

/** Waits until bob's list is scrolled to its end with the newest message wholly in view. */
function waitAtNewest(page) {
  return page.waitForFunction(() => {
    const list = document.querySelector('[data-testid="messages"]');
    // The outbox (ours, not sent yet) is the list's last child; here it is empty.
    const last = list.querySelector('[data-testid="outbox"]').previousElementSibling.getBoundingClientRect();
    return list.scrollHeight - list.scrollTop - list.clientHeight < 2
      && last.bottom <= list.getBoundingClientRect().bottom + 1;
  }, null, { timeout: 5000 });
}

run('view follows the newest message', async (browser) => {
  const room = uniqueRoom('scroll');
  const bob = await person(browser, 'bob', room, { viewport: { width: 800, height: 520 } });
  const alice = await person(browser, 'alice', room);
  for (let i = 0; i < 15; i++) await say(alice, `line ${i}`);
  await waitMessage(bob, 'alice', 'line 14');
  await waitAtNewest(bob);

  // A tall image, then a file: both grow after they were added.
  const tall = await makePng(240, 320, (x, y) => [x, y % 256, 180, 255]);
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'tall.png', mimeType: 'image/png', buffer: tall });
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'after.txt', mimeType: 'text/plain', buffer: Buffer.from('after the image\n') });
  await bob.waitForFunction(() => {
    const img = document.querySelector('img[data-testid="inline-image"]');
    const file = document.querySelector('[data-testid="message"][data-kind="file"] a.file-download');
    return img && img.complete && img.naturalWidth > 0 && file;
  });
  await waitAtNewest(bob);

  // Bob shares a file himself: while it uploads, its progress row takes room
  // under the list, and the newest message stays in view above it.
  await bob.evaluate(() => {
    window.atNewestWhileUploading = [];
    const list = document.querySelector('[data-testid="messages"]');
    new MutationObserver(() => requestAnimationFrame(() => requestAnimationFrame(() => {
      window.atNewestWhileUploading.push(list.scrollHeight - list.scrollTop - list.clientHeight < 2);
    }))).observe(document.querySelector('[data-testid="uploads"]'), { childList: true });
  });
  await bob.setInputFiles('[data-testid="file-input"]', { name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(4 << 20, 7) });
  await bob.waitForSelector('[data-testid="message"][data-from="bob"][data-kind="file"][data-state="ready"]');
  await bob.waitForSelector('[data-testid="upload"]', { state: 'detached' });
  await waitAtNewest(bob);
  const seen = await bob.evaluate(() => window.atNewestWhileUploading);
  assert(seen.length > 0 && seen.every(Boolean), `at the newest message while the upload row came and went: ${JSON.stringify(seen)}`);

  // Bob scrolls up to read; new messages do not move him, a button appears.
  await bob.evaluate(() => { document.querySelector('[data-testid="messages"]').scrollTop = 0; });
  await bob.waitForFunction(() => document.querySelector('[data-testid="messages"]').scrollTop === 0);
  await say(alice, 'while bob reads');
  await waitMessage(bob, 'alice', 'while bob reads');
  await bob.waitForSelector('[data-testid="new-messages"]', { state: 'visible' });
  assert(await bob.evaluate(() => document.querySelector('[data-testid="messages"]').scrollTop === 0), 'bob was left where he was reading');

  // The button takes him to the newest message and goes away.
  await bob.click('[data-testid="new-messages"]');
  await waitAtNewest(bob);
  await bob.waitForSelector('[data-testid="new-messages"]', { state: 'hidden' });

  // At the bottom again, he follows the conversation without the button.
  await say(alice, 'and again');
  await waitMessage(bob, 'alice', 'and again');
  await waitAtNewest(bob);
  assert(await bob.isHidden('[data-testid="new-messages"]'), 'no button while following');
});
