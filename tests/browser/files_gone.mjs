// Files whose bytes the server no longer keeps (it runs with a small
// --retain-bytes, so each new file pushes the older ones' bytes out) say
// "No longer available": when a download button offered before is pressed,
// or an image loaded, and the URL answers 404; and in a history that says
// `available:false`. A file still kept shows as usual.
import { run, person, uniqueRoom, makePng, waitOnline, serverControl, assert, assertEq } from './lib.mjs';

const FILE = (name) => `[data-testid="message"][data-from="alice"][data-kind="file"]:has([data-testid="file-name"]:text-is("${name}"))`;

/** A PNG of noise, which does not compress: a little over 4 KiB. */
function noisePng(seed) {
  let x = seed;
  const next = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 24;
  };
  return makePng(32, 32, () => [next(), next(), next(), 255]);
}

async function confirmed(page, name) {
  await page.waitForSelector(`${FILE(name)}[data-state="ready"]`);
  await page.waitForSelector(`[data-testid="upload"][data-name="${name}"]`, { state: 'detached' });
}

run('files no longer kept say so', async (browser) => {
  const room = uniqueRoom('gone');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);

  // A text file, then a reload: it is offered from the server's URL.
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('notes\n'.repeat(500)) });
  await confirmed(alice, 'notes.txt');
  await bob.reload();
  await waitOnline(bob);
  await bob.waitForSelector(`${FILE('notes.txt')}[data-replay][data-state="ready"] button[data-testid="file-link"]`);

  // A picture pushes its bytes out; pressing the button then finds them gone.
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'first.png', mimeType: 'image/png', buffer: await noisePng(1) });
  await confirmed(alice, 'first.png');
  await bob.waitForSelector(`${FILE('first.png')} img[data-testid="inline-image"]`);
  await bob.click(`${FILE('notes.txt')} [data-testid="file-link"]`);
  await bob.waitForSelector(`${FILE('notes.txt')}[data-state="unavailable"]`);
  assert(/no longer available/i.test(await bob.textContent(FILE('notes.txt'))), 'a 404 says the file is no longer available');
  assertEq(await bob.evaluate(() => document.activeElement && document.activeElement.dataset.testid), 'messages', 'focus stays in the list');

  // Another pushes the first picture's out. After a reload the history
  // still gives its URL (the server had it in memory), which answers 404.
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'second.png', mimeType: 'image/png', buffer: await noisePng(2) });
  await confirmed(alice, 'second.png');
  await bob.reload();
  await waitOnline(bob);
  const second = await bob.waitForSelector(`${FILE('second.png')}[data-replay] img[data-testid="inline-image"]`);
  await bob.waitForFunction((el) => el.complete && el.naturalWidth === 32, second);
  await bob.waitForSelector(`${FILE('first.png')}[data-replay][data-state="unavailable"]`);
  assert(/no longer available/i.test(await bob.textContent(FILE('first.png'))), 'an image whose URL answers 404 is no longer available');

  // Restarted, the server reads the history from its database, which says
  // which bytes are gone: the page says so at once, asking for nothing.
  await serverControl('restart');
  const asked = [];
  bob.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/files/')) asked.push(decodeURIComponent(new URL(r.url()).pathname));
  });
  await bob.reload();
  await waitOnline(bob);
  await bob.waitForSelector(`${FILE('second.png')}[data-replay] img[data-testid="inline-image"]`);
  for (const name of ['notes.txt', 'first.png']) {
    const bubble = `${FILE(name)}[data-replay][data-state="unavailable"]`;
    await bob.waitForSelector(bubble);
    assert(/no longer available/i.test(await bob.textContent(bubble)), `${name}: no longer available`);
    assertEq(await bob.locator(`${FILE(name)} img, ${FILE(name)} [data-testid="file-link"]`).count(), 0, `${name}: nothing to show or download`);
  }
  assert(!asked.some((p) => /notes\.txt|first\.png/.test(p)), `nothing asked for the files that are gone: ${asked}`);
});
