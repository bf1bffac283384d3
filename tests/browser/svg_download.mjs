// A received SVG (which, opened as a page, could run script in the
// server's origin) is never shown as an image: it is offered as a download
// whose bytes are typed application/octet-stream, for the sender as for
// the receiver, and clicking it downloads it without opening anything.
import { readFileSync } from 'node:fs';
import { run, person, uniqueRoom, assert, assertEq } from './lib.mjs';

const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="document.title=\'ran\'">'
  + '<script>document.title = "ran";</script><rect width="40" height="40" fill="red"/></svg>\n');
const BUBBLE = '[data-testid="message"][data-from="alice"][data-kind="file"][data-state="ready"]';

run('an SVG is offered as a download of opaque bytes', async (browser) => {
  const room = uniqueRoom('svg');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'drawing.svg', mimeType: 'image/svg+xml', buffer: SVG });

  for (const [who, page] of [['bob', bob], ['alice', alice]]) {
    await page.waitForSelector(BUBBLE);
    const info = await page.$eval(BUBBLE, async (bubble) => {
      const a = bubble.querySelector('a[data-testid="file-link"]');
      const res = await fetch(a.href);
      const bytes = new Uint8Array(await res.arrayBuffer());
      return {
        images: bubble.querySelectorAll('img, svg image, object, embed, iframe').length,
        download: a.getAttribute('download'),
        blob: a.href.startsWith('blob:'),
        type: res.headers.get('content-type'),
        text: new TextDecoder().decode(bytes),
        title: document.title,
      };
    });
    assertEq(info.images, 0, `${who}: not shown as an image`);
    assertEq([info.download, info.blob], ['drawing.svg', true], `${who}: a download of the bytes received`);
    assertEq(info.type, 'application/octet-stream', `${who}: typed as opaque bytes, not as image/svg+xml`);
    assertEq(info.text, SVG.toString(), `${who}: every byte`);
    assert(!/ran/.test(info.title), `${who}: its script never ran (title ${info.title})`);
  }

  // Clicking downloads it; nothing is opened.
  const link = await bob.$(`${BUBBLE} a[data-testid="file-link"]`);
  const [download] = await Promise.all([bob.waitForEvent('download'), link.click()]);
  assertEq(download.suggestedFilename(), 'drawing.svg', 'downloaded under its name');
  assert(readFileSync(await download.path()).equals(SVG), 'downloaded bytes identical to the file sent');
  assertEq(bob.context().pages().length, 1, 'no page was opened');
  assert(!/ran/.test(await bob.title()), 'its script never ran');
});
