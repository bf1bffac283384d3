// A file that is not an image is offered as a download link, never downloaded by itself.
import { run, person, uniqueRoom, assert, assertEq } from './lib.mjs';

run('other files are download links', async (browser) => {
  const room = uniqueRoom('file');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  let downloads = 0;
  bob.on('download', () => downloads++);

  const body = Buffer.from('<script>alert(1)</script> notes\n'.repeat(200));
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'notes.html', mimeType: 'text/html', buffer: body });

  const link = await bob.waitForSelector('[data-testid="message"][data-from="alice"] a[data-testid="file-link"]');
  const info = await bob.evaluate(async (a) => {
    const bytes = new Uint8Array(await (await fetch(a.href)).arrayBuffer());
    return { download: a.getAttribute('download'), href: a.href, len: bytes.length, images: document.querySelectorAll('img[data-testid="inline-image"]').length };
  }, link);
  assertEq(info.download, 'notes.html', 'link downloads under the file name');
  assert(info.href.startsWith('blob:'), 'link points at the received bytes');
  assertEq(info.len, body.length, 'link holds every byte');
  assertEq(info.images, 0, 'not shown as an image');
  assertEq(downloads, 0, 'nothing was downloaded without a click');

  // Clicking it downloads the very bytes.
  const [download] = await Promise.all([bob.waitForEvent('download'), link.click()]);
  assertEq(download.suggestedFilename(), 'notes.html', 'downloaded file name');
  const saved = await download.path();
  const { readFileSync } = await import('node:fs');
  assert(readFileSync(saved).equals(body), 'downloaded bytes identical to the file sent');
});
