// A picture dropped onto the page is sent to the room and shown inline for the other person, byte for byte.
import { run, person, uniqueRoom, makePng, assert, assertEq } from './lib.mjs';

/** Dispatches a drag event of `type` carrying `dt` on the message list; true when the page called preventDefault. */
function drag(page, type, dt) {
  return page.evaluate(([t, d]) => {
    const target = document.querySelector('[data-testid="messages"]');
    const ev = new DragEvent(t, { bubbles: true, cancelable: true, composed: true, dataTransfer: d });
    return !target.dispatchEvent(ev);
  }, [type, dt]);
}

run('dropped file is sent and shown', async (browser) => {
  const room = uniqueRoom('drop');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);

  const png = await makePng(80, 48, (x, y) => [255 - x * 3, y * 5, (x * y) & 0xff, 255]);
  // The file is built inside alice's page from the known bytes, as a drag from the desktop would carry it.
  const dt = await alice.evaluateHandle((b64) => {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const d = new DataTransfer();
    d.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
    return d;
  }, png.toString('base64'));

  assert(await alice.isHidden('[data-testid="drop-overlay"]'), 'no drop overlay before a drag');
  assert(await drag(alice, 'dragenter', dt), 'the page accepts a drag carrying files');
  await alice.waitForSelector('[data-testid="drop-overlay"]', { state: 'visible' });
  assert(await drag(alice, 'dragover', dt), 'the page lets the files be dropped (dragover prevented)');
  assert(await drag(alice, 'drop', dt), 'the page handles the drop itself instead of opening the file');
  await alice.waitForSelector('[data-testid="drop-overlay"]', { state: 'hidden' });

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
    assertEq([info.w, info.h], [80, 48], `${who}: image decoded at its size`);
    assert(info.b64 === png.toString('base64'), `${who}: image bytes identical to the file dropped`);
  }
  const name = await bob.textContent('[data-testid="message"][data-from="alice"] [data-testid="file-name"]');
  assertEq(name, 'dropped.png', 'file name shown');
});
