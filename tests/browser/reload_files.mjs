// A reload shows the room's earlier files at once, from the URLs the
// server gives them in the history: an image inline, loaded from /files/…,
// and an SVG as a download of opaque bytes, never rendered.
import { readFileSync } from 'node:fs';
import { run, person, uniqueRoom, makePng, waitOnline, assert, assertEq } from './lib.mjs';

const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="document.title=\'ran\'">'
  + '<script>document.title = "ran";</script><rect width="40" height="40" fill="red"/></svg>\n');
const FILE = (name) => `[data-testid="message"][data-from="alice"][data-kind="file"][data-state="ready"]:has([data-testid="file-name"]:text-is("${name}"))`;

run('a reload shows earlier files', async (browser) => {
  const room = uniqueRoom('files');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  const png = await makePng(48, 32, (x, y) => [x * 5, y * 7, 90, 255]);
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'dots.png', mimeType: 'image/png', buffer: png });
  await bob.waitForSelector(`${FILE('dots.png')} img[data-testid="inline-image"]`);
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'drawing.svg', mimeType: 'image/svg+xml', buffer: SVG });
  await bob.waitForSelector(FILE('drawing.svg'));

  await bob.reload();
  await waitOnline(bob);

  // The image, inline at once, from the server's URL, byte for byte.
  const img = await bob.waitForSelector(`${FILE('dots.png')}[data-replay] img[data-testid="inline-image"]`);
  await bob.waitForFunction((el) => el.complete && el.naturalWidth > 0, img);
  const shown = await bob.evaluate(async (el) => {
    const bytes = new Uint8Array(await (await fetch(el.src)).arrayBuffer());
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    return { path: new URL(el.src).pathname, origin: new URL(el.src).origin === location.origin, b64: btoa(bin), w: el.naturalWidth, h: el.naturalHeight };
  }, img);
  assert(shown.path.startsWith('/files/') && shown.origin, `the image comes from the server's /files/ (${shown.path})`);
  assertEq([shown.w, shown.h], [48, 32], 'decoded at its size');
  assert(shown.b64 === png.toString('base64'), 'the very bytes sent');

  // The SVG: no image, a download; its bytes are saved, typed as opaque bytes.
  const svg = FILE('drawing.svg');
  assertEq(await bob.locator(`${svg} img, ${svg} object, ${svg} embed, ${svg} iframe`).count(), 0, 'the SVG is not rendered');
  const link = bob.locator(`${svg} [data-testid="file-link"]`);
  const [download] = await Promise.all([bob.waitForEvent('download'), link.click()]);
  assertEq(download.suggestedFilename(), 'drawing.svg', 'downloaded under its name');
  assert(readFileSync(await download.path()).equals(SVG), 'downloaded bytes identical to the file sent');
  const type = await bob.$eval(`${svg} [data-testid="file-link"]`, async (b) => (await fetch(b.dataset.href)).headers.get('content-type'));
  assertEq(type, 'application/octet-stream', 'the saved bytes are typed as opaque bytes');
  assertEq(bob.context().pages().length, 1, 'no page was opened');
  assert(!/ran/.test(await bob.title()), 'its script never ran');
});
