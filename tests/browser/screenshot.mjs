// Takes a screenshot of a two-person conversation as alice sees it, written to
// the path given after the address (docs/screenshot.png when none is given).
import path from 'node:path';
import { run, person, say, waitMessage, waitPresence, makePng, REPO, assert } from './lib.mjs';

run('screenshot of a conversation', async (browser) => {
  const room = 'design-review';
  const view = { viewport: { width: 1100, height: 840 }, deviceScaleFactor: 1 };
  const alice = await person(browser, 'alice', room, view);
  const bob = await person(browser, 'bob', room, view);
  await waitPresence(alice, ['alice', 'bob']);

  await say(bob, 'Morning! Did the new build go out?');
  await waitMessage(alice, 'bob', 'Morning! Did the new build go out?');
  await say(alice, 'Yes, deployed at 9. Reconnects resume where they left off now.');
  await waitMessage(bob, 'alice', 'Yes, deployed at 9. Reconnects resume where they left off now.');
  await say(alice, 'Here is the dashboard:');
  const chart = await makePng(320, 160, (x, y) => {
    const h = 80 + 50 * Math.sin(x / 28);
    if (y > 160 - h) return [79 + (x % 40), 70, 229, 255];
    return [238, 242, 255, 255];
  });
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'latency.png', mimeType: 'image/png', buffer: chart });
  await bob.waitForFunction(() => {
    const img = document.querySelector('img[data-testid="inline-image"]');
    return img && img.complete && img.naturalWidth > 0;
  });
  await say(bob, 'Looks great, p99 is way down.');
  await bob.setInputFiles('[data-testid="file-input"]', { name: 'release-notes.txt', mimeType: 'text/plain', buffer: Buffer.from('wschat release notes\n'.repeat(40)) });
  await alice.waitForSelector('a[data-testid="file-link"]:not(.caption-download)');
  await waitMessage(alice, 'bob', 'Looks great, p99 is way down.');
  await alice.waitForFunction(() => {
    const img = document.querySelector('img[data-testid="inline-image"]');
    return img && img.complete && img.naturalWidth > 0;
  });
  // Bob starts typing again so the typing indicator shows.
  await bob.type('[data-testid="message-input"]', 'One more');
  await alice.waitForSelector('[data-testid="typing-text"]');
  await alice.fill('[data-testid="message-input"]', '');
  await alice.evaluate(() => { document.activeElement.blur(); const m = document.getElementById('messages'); m.scrollTop = m.scrollHeight; });

  const out = process.argv[3] ? path.resolve(process.argv[3]) : path.join(REPO, 'docs', 'screenshot.png');
  await alice.screenshot({ path: out, animations: 'disabled' });
  const { statSync } = await import('node:fs');
  assert(statSync(out).size > 10000, 'screenshot written');
});
