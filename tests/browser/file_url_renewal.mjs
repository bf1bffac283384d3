// A history file's URL the server refuses (as it does once the URL has
// expired) is not the end: the page asks the room for a fresh one with
// `file_url` and loads the file from that, an inline image as well as a
// download. The server's answers to /files/ are refused here until the page
// has asked.
import { readFileSync } from 'node:fs';
import { run, person, uniqueRoom, makePng, waitOnline, assert, assertEq } from './lib.mjs';

const FILE = (name) => `[data-testid="message"][data-from="alice"][data-kind="file"]:has([data-testid="file-name"]:text-is("${name}"))`;

run('expired file URLs are renewed', async (browser) => {
  const room = uniqueRoom('renew');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  const png = await makePng(24, 16, (x, y) => [x * 9, y * 13, 40, 255]);
  const notes = Buffer.from('notes worth keeping\n'.repeat(50));
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'dots.png', mimeType: 'image/png', buffer: png });
  await bob.waitForSelector(`${FILE('dots.png')} img[data-testid="inline-image"]`);
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'notes.bin', mimeType: 'application/octet-stream', buffer: notes });
  await bob.waitForSelector(FILE('notes.bin'));

  // Every /files/ answer is 403 until the page has asked for a fresh URL.
  let refusing = true;
  let asked = 0;
  let refused = 0;
  bob.on('websocket', (ws) => ws.on('framesent', (f) => {
    if (typeof f.payload === 'string' && f.payload.includes('"file_url"')) {
      asked += 1;
      refusing = false;
    }
  }));
  await bob.route('**/files/**', (route) => {
    if (!refusing) return route.continue();
    refused += 1;
    return route.fulfill({ status: 403, contentType: 'text/plain', body: 'this file URL has expired\n' });
  });

  await bob.reload();
  await waitOnline(bob);
  const img = await bob.waitForSelector(`${FILE('dots.png')}[data-replay] img[data-testid="inline-image"]`);
  await bob.waitForFunction((el) => el.complete && el.naturalWidth > 0, img);
  assert(refused > 0, 'the first load was refused');
  assert(asked > 0, 'the page asked for a fresh URL');
  assertEq(await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]), [24, 16], 'the image, loaded from the fresh URL');

  // A download whose URL is refused asks again, and saves the very bytes.
  refusing = true;
  const before = asked;
  const button = bob.locator(`${FILE('notes.bin')} [data-testid="file-link"]`);
  const [download] = await Promise.all([bob.waitForEvent('download'), button.click()]);
  assert(asked > before, 'the download asked for a fresh URL');
  assertEq(download.suggestedFilename(), 'notes.bin', 'saved under its name');
  assert(readFileSync(await download.path()).equals(notes), 'the very bytes sent');
});
