// axe-core finds no serious or critical WCAG 2.1 A/AA violations on the join
// screen, a busy chat in light and dark (Markdown, a mention, the unread
// divider, the list of names to mention open), the phone people panel (light
// and dark) and the phone's list of names to mention, two rooms side by side
// (the form to join another, the room bar with counts; desk and phone, light
// and dark), the offline chat, the limits refused by the page and a taken name;
// animations stop for people who ask for reduced motion. Each state is
// photographed into the directory given after the address.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import {
  run, openPage, person, join, say, waitMessage, waitPresence, uniqueRoom, makePng, socketSpy, axeCheck, assertEq,
} from './lib.mjs';

const outDir = process.argv[3];
if (!outDir) {
  console.error('usage: node a11y.mjs <host:port> <screenshot directory>');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

async function shot(page, name) {
  await page.screenshot({ path: path.join(outDir, name), animations: 'disabled' });
}

const MARKDOWN = '**Heads up** @alice: run `cargo test --test browser` first, *then* [the checklist](https://example.com/checklist)\n```\ncargo clippy --all-targets -- -D warnings\n```';

const SENTENCE = 'The quick brown fox jumps over the lazy dog, then checks the release notes once more. ';

run('axe finds no serious or critical violations', async (browser) => {
  const room = 'design-review'; // a server of its own: no other run shares it

  // ---- join screen
  const visitor = await openPage(browser, { label: 'visitor' });
  await visitor.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  await axeCheck(visitor, 'join screen, light');
  await shot(visitor, 'screenshot-join.png');
  await visitor.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(visitor, 'join screen, dark');

  // ---- a busy chat: three people, text, a link, an image, a file, notes, typing
  const desk = { viewport: { width: 1100, height: 800 } };
  const alice = await person(browser, 'alice', room, { ...desk, initScript: socketSpy });
  const bob = await person(browser, 'bob', room, desk);
  await say(bob, 'Morning! Did the new build go out?');
  await waitMessage(alice, 'bob', 'Morning! Did the new build go out?');
  await say(alice, 'Yes, deployed at 9. Reconnects resume where they left off now.');
  const chart = await makePng(320, 160, (x, y) => (y > 160 - (80 + 50 * Math.sin(x / 28)) ? [79 + (x % 40), 70, 229, 255] : [238, 242, 255, 255]));
  await alice.setInputFiles('[data-testid="file-input"]', { name: 'latency.png', mimeType: 'image/png', buffer: chart });
  const carol = await person(browser, 'carol', room, desk);
  await say(carol, 'Notes are at https://example.com/wschat/release-notes if anyone wants them.');
  await bob.setInputFiles('[data-testid="file-input"]', { name: 'release-notes.txt', mimeType: 'text/plain', buffer: Buffer.from('wschat release notes\n'.repeat(40)) });
  await waitMessage(alice, 'carol', 'Notes are at https://example.com/wschat/release-notes if anyone wants them.');
  await alice.waitForSelector('[data-testid="message"][data-from="bob"][data-kind="file"][data-state="ready"]');
  await alice.waitForFunction(() => {
    const img = document.querySelector('img[data-testid="inline-image"]');
    return img && img.complete && img.naturalWidth > 0;
  });
  // While alice looks away, carol mentions her: back, she sees the unread
  // divider above it (the tab is made hidden by overriding document.hidden).
  await alice.evaluate(() => Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }));
  await say(carol, MARKDOWN);
  await alice.waitForSelector('[data-testid="message"][data-mentions-me="true"] pre');
  await alice.evaluate(() => {
    delete document.hidden;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await alice.waitForSelector('[data-testid="unread-divider"]');
  await say(alice, 'On it, @carol: `cargo test` is **green**.');
  await alice.waitForSelector('[data-testid="message"][data-from="alice"] [data-testid="mention"]');
  await carol.locator('[data-testid="message-input"]').pressSequentially('one more thing');
  await alice.waitForSelector('[data-testid="typing-text"]');
  await alice.locator('[data-testid="message-input"]').pressSequentially('@b');
  await alice.waitForSelector('[data-testid="mention-option"][aria-selected="true"]');
  await axeCheck(alice, 'busy chat, light');
  await alice.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(alice, 'busy chat, dark');
  await shot(alice, 'screenshot-dark.png');
  await alice.emulateMedia({ colorScheme: 'light' });
  await alice.keyboard.press('Escape');
  await alice.fill('[data-testid="message-input"]', '');

  // ---- the phone people panel
  const phone = await person(browser, 'dana', room, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await waitPresence(phone, ['alice', 'bob', 'carol', 'dana']);
  await phone.click('[data-testid="people-toggle"]');
  await phone.waitForSelector('[data-testid="sidebar"][role="dialog"]', { state: 'visible' });
  await axeCheck(phone, 'phone people panel, light');
  await shot(phone, 'screenshot-phone-people.png');
  await phone.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(phone, 'phone people panel, dark');
  await shot(phone, 'screenshot-phone-people-dark.png');
  await phone.keyboard.press('Escape');
  await phone.waitForSelector('[data-testid="sidebar"]', { state: 'hidden' });
  await axeCheck(phone, 'phone chat, dark');
  await phone.emulateMedia({ colorScheme: 'light' });
  await axeCheck(phone, 'phone chat, light');
  await phone.locator('[data-testid="message-input"]').pressSequentially('@');
  await phone.waitForSelector('[data-testid="mention-option"][aria-selected="true"]');
  await axeCheck(phone, 'phone names to mention, light');
  await shot(phone, 'screenshot-phone-mention.png');
  await phone.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(phone, 'phone names to mention, dark');
  await phone.emulateMedia({ colorScheme: 'light' });
  await phone.keyboard.press('Escape');
  await phone.fill('[data-testid="message-input"]', '');

  // ---- rooms side by side: the form to join another, a room bar whose
  // room not shown counts what came there and the mentions of us
  const room2 = 'design-review-later';
  const gus = await person(browser, 'gus', room, desk);
  for (const p of [gus, phone]) {
    await p.click('[data-testid="add-room"]');
    await p.waitForSelector('[data-testid="join-back"]', { state: 'visible' });
  }
  await axeCheck(gus, 'join another room, light');
  await gus.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(gus, 'join another room, dark');
  await gus.emulateMedia({ colorScheme: 'light' });
  for (const p of [gus, phone]) {
    await p.fill('[data-testid="join-room"]', room2);
    await p.press('[data-testid="join-room"]', 'Enter');
    await p.waitForSelector(`[data-testid="room-tab"][data-room="${room2}"][aria-current="true"]`);
    await p.click(`[data-testid="room-tab"][data-room="${room}"]`);
    await p.waitForSelector(`[data-testid="room-tab"][data-room="${room}"][aria-current="true"]`);
  }
  const frank = await person(browser, 'frank', room2, desk);
  await say(frank, '@gus @dana the agenda is up');
  for (const p of [gus, phone]) await p.getByRole('button', { name: `${room2}, 1 unread, 1 mention`, exact: true }).waitFor();
  await axeCheck(gus, 'rooms, light');
  await shot(gus, 'screenshot-rooms.png');
  await gus.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(gus, 'rooms, dark');
  await axeCheck(phone, 'phone rooms, light');
  await shot(phone, 'screenshot-phone-rooms.png');
  await phone.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(phone, 'phone rooms, dark');
  await phone.emulateMedia({ colorScheme: 'light' });

  // ---- limits: a message near the text limit, a file over the size limit
  const text = SENTENCE.repeat(Math.ceil(3900 / SENTENCE.length)).slice(0, 3900);
  await alice.fill('[data-testid="message-input"]', text);
  await alice.waitForSelector('[data-testid="char-counter"]', { state: 'visible' });
  await alice.evaluate((size) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(size)], 'holiday-video.mp4', { type: 'video/mp4' }));
    const input = document.querySelector('[data-testid="file-input"]');
    input.files = dt.files;
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, (await alice.evaluate(() => (window.__welcome.limits || {}).file || 16 * 1024 * 1024)) + 5 * 1024 * 1024);
  await alice.waitForSelector('[data-testid="composer-notice"][data-kind="error"]');
  await axeCheck(alice, 'limits, light');
  await shot(alice, 'screenshot-limits.png');
  await alice.fill('[data-testid="message-input"]', '');

  // ---- offline: new connections fail and the current one drops
  await carol.fill('[data-testid="message-input"]', '');
  await alice.evaluate(() => {
    window.__block = true;
    window.__sockets.at(-1).close();
  });
  await alice.waitForSelector('[data-testid="composer-notice"][data-kind="offline"]');
  // A message sent while offline waits, marked as not sent; another is being typed.
  await alice.fill('[data-testid="message-input"]', 'I will send this once I am back');
  await alice.press('[data-testid="message-input"]', 'Enter');
  await alice.waitForSelector('[data-testid="pending-message"][data-state="queued"]');
  await alice.fill('[data-testid="message-input"]', 'And this one too');
  await axeCheck(alice, 'offline, light');
  await shot(alice, 'screenshot-offline.png');
  await alice.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(alice, 'offline, dark');
  await alice.emulateMedia({ colorScheme: 'light' });
  await alice.evaluate(() => { window.__block = false; });

  // ---- a taken name on the join form
  await visitor.emulateMedia({ colorScheme: 'light' });
  await visitor.fill('[data-testid="join-name"]', 'bob');
  await visitor.fill('[data-testid="join-room"]', room);
  await visitor.press('[data-testid="join-room"]', 'Enter');
  await visitor.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  await axeCheck(visitor, 'name taken, light');
  await shot(visitor, 'screenshot-name-taken.png');
  await visitor.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(visitor, 'name taken, dark');

  // ---- reduced motion: nothing slides, fades or pulses
  const calm = await openPage(browser, { label: 'calm', viewport: { width: 390, height: 844 } });
  await calm.emulateMedia({ reducedMotion: 'reduce' });
  await join(calm, 'erin', room);
  await say(bob, 'no animation for erin');
  await waitMessage(calm, 'bob', 'no animation for erin');
  const motion = await calm.evaluate(() => {
    const bubble = document.querySelector('[data-testid="message"][data-from="bob"]:not([data-replay])');
    const sidebar = document.querySelector('[data-testid="sidebar"]');
    return { bubble: getComputedStyle(bubble).animationName, sidebar: getComputedStyle(sidebar).transitionDuration.split(',').every((d) => parseFloat(d) === 0) };
  });
  assertEq(motion, { bubble: 'none', sidebar: true }, 'no animation or transition with reduced motion');
});
