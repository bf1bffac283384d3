// The page fits a 360px-wide phone screen: no sideways scrolling, composer and people list reachable.
import { run, person, say, waitMessage, uniqueRoom, assert, makePng } from './lib.mjs';

run('usable at phone width', async (browser) => {
  const room = uniqueRoom('phone');
  const phone = { viewport: { width: 360, height: 740 }, deviceScaleFactor: 2 };
  const alice = await person(browser, 'alice', room, phone);
  const bob = await person(browser, 'bob', room);
  await say(bob, 'A long line without spaces: ' + 'x'.repeat(200));
  await say(bob, 'see https://example.com/a/very/long/path/that/goes/on/and/on/and/on/forever?with=query&and=more');
  await bob.setInputFiles('[data-testid="file-input"]', { name: 'wide.png', mimeType: 'image/png', buffer: await makePng(900, 200, (x) => [x % 256, 120, 200, 255]) });
  await waitMessage(alice, 'bob', 'A long line without spaces: ' + 'x'.repeat(200));
  await alice.waitForFunction(() => {
    const img = document.querySelector('img[data-testid="inline-image"]');
    return img && img.complete && img.naturalWidth > 0;
  });
  await say(alice, 'fits');
  await waitMessage(alice, 'alice', 'fits');

  const layout = await alice.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const wide = Array.from(document.querySelectorAll('#chat-screen *'))
      .filter((e) => e.getClientRects().length && !e.closest('#sidebar'))
      .filter((e) => { const r = e.getBoundingClientRect(); return r.right > vw + 0.5 || r.left < -0.5; })
      .map((e) => e.tagName + '.' + e.className);
    const input = document.querySelector('[data-testid="message-input"]').getBoundingClientRect();
    return { vw, scroll: document.documentElement.scrollWidth, wide, inputW: input.width, inputBottom: input.bottom, vh: innerHeight };
  });
  assert(layout.vw === 360, `viewport is 360px (${layout.vw})`);
  assert(layout.scroll <= layout.vw, `no sideways scroll (${layout.scroll} > ${layout.vw})`);
  assert(layout.wide.length === 0, `elements stick out: ${layout.wide.join(', ')}`);
  assert(layout.inputW >= 180 && layout.inputBottom <= layout.vh, `composer usable (${JSON.stringify(layout)})`);

  if (process.env.WSCHAT_PHONE_SHOT) await alice.screenshot({ path: process.env.WSCHAT_PHONE_SHOT, animations: 'disabled' });

  // The people list opens from the header.
  await alice.click('[data-testid="people-toggle"]');
  await alice.waitForSelector('[data-testid="presence-user"][data-name="bob"]', { state: 'visible' });
});
