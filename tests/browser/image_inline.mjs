// An image sent by one person is shown inline for the other, byte for byte.
import { run, person, uniqueRoom, makePng, assert, assertEq } from './lib.mjs';

run('image shows inline with identical bytes', async (browser) => {
  const room = uniqueRoom('image');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);

  const png = await makePng(96, 64, (x, y) => [x * 2, y * 3, 200 - x, 255]);
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'gradient.png', mimeType: 'image/png', buffer: png });

  for (const [who, page] of [['bob', bob], ['alice', alice]]) {
    const img = await page.waitForSelector('[data-testid="message"][data-from="alice"] img[data-testid="inline-image"]');
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, img);
    const info = await page.evaluate(async (el) => {
      const bytes = new Uint8Array(await (await fetch(el.src)).arrayBuffer());
      let bin = '';
      for (const b of bytes) bin += String.fromCharCode(b);
      return { src: el.src, b64: btoa(bin), w: el.naturalWidth, h: el.naturalHeight };
    }, img);
    assert(info.src.startsWith('blob:'), `${who}: image comes from a blob URL (${info.src})`);
    assertEq([info.w, info.h], [96, 64], `${who}: image decoded at its size`);
    assert(info.b64 === png.toString('base64'), `${who}: image bytes identical to the file sent`);
  }
  const name = await bob.textContent('[data-testid="message"][data-from="alice"] [data-testid="file-name"]');
  assertEq(name, 'gradient.png', 'file name shown');
  // The upload indicator goes away once the server has the file.
  await alice.waitForSelector('[data-testid="upload"]', { state: 'detached' });
});
