// The page keeps to the server's limits before sending. The server runs with
// a small --max-file-size; the page uses the limits its welcome announced
// (the defaults when it announced none). A file over the size limit is
// refused with the limit in words and never sent, so nobody receives it and
// the sender stays connected; a message nearing the text limit shows a
// counter and cannot be sent once over it; a burst of messages faster than
// the rate is held back by the page instead of refused by the server.
import { run, person, uniqueRoom, waitMessage, socketSpy, sentCounts, assert, assertEq } from './lib.mjs';

const DEFAULTS = { text: 4096, file: 16 * 1024 * 1024, rate: 20, burst: 60 };
const NOTICE = '[data-testid="composer-notice"]';
const NOTICE_TEXT = '[data-testid="composer-notice-text"]';
const COUNTER = '[data-testid="char-counter"]';
const INPUT = '[data-testid="message-input"]';

/** Puts a file of `size` zero bytes, made inside the page, into the file input. */
function chooseFile(page, name, size) {
  return page.evaluate(([n, s]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(s)], n, { type: 'application/octet-stream' }));
    const input = document.querySelector('[data-testid="file-input"]');
    input.files = dt.files;
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, [name, size]);
}

function noticeText(page) {
  return page.textContent(NOTICE_TEXT);
}

run('limits are kept before sending', async (browser) => {
  const room = uniqueRoom('limits');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room, { initScript: socketSpy });
  const announced = await alice.evaluate(() => window.__welcome.limits || null);
  const limits = { ...DEFAULTS, ...(announced || {}) };
  console.log(announced ? `limits announced by the server: ${JSON.stringify(announced)}` : 'no limits announced: the page uses the defaults');
  const mb = limits.file / (1024 * 1024);
  assert(Number.isInteger(mb), `the test expects a whole number of MB (${limits.file})`);

  // ---- a file one byte over the limit
  const before = await sentCounts(alice);
  await chooseFile(alice, 'too-big.bin', limits.file + 1);
  await alice.waitForSelector(`${NOTICE}[data-kind="error"]`);
  const refusal = await noticeText(alice);
  assert(refusal.includes('too-big.bin') && refusal.includes(`${mb} MB at most`), `refusal names the file and the limit in words: ${refusal}`);
  assert(!/\d{6,}/.test(refusal), `no raw byte counts: ${refusal}`);
  assertEq(await sentCounts(alice), before, 'not a single frame was sent for it');
  assertEq(await alice.locator('[data-testid="upload"]').count(), 0, 'no upload was started');

  // The connection is fine: a small file right after goes through, and it
  // is the only file bob ever hears of.
  await chooseFile(alice, 'small.bin', 2048);
  await bob.waitForSelector('[data-testid="message"][data-from="alice"][data-kind="file"][data-state="ready"]');
  await alice.waitForSelector('[data-testid="status"][data-state="online"]');
  assertEq(await alice.evaluate(() => window.__sockets.length), 1, 'alice was never disconnected');
  const bobFiles = await bob.evaluate(() => window.__received.filter((e) => e.type === 'file').map((e) => e.name));
  assertEq(bobFiles, ['small.bin'], 'bob never received the oversize file');
  const aliceErrors = await alice.evaluate(() => window.__received.filter((e) => e.type === 'error').map((e) => e.code));
  assertEq(aliceErrors, [], 'the server had nothing to refuse');
  assertEq(await noticeText(alice), '', 'the refusal goes once the next file is shared');

  // ---- the text limit, in bytes of UTF-8
  await alice.fill(INPUT, 'a'.repeat(Math.floor(limits.text / 2)));
  assert(await alice.isHidden(COUNTER), 'no counter far from the limit');
  await alice.fill(INPUT, 'a'.repeat(limits.text - 10));
  assertEq(await alice.textContent(COUNTER), '10 left', 'counter near the limit');
  const sentBefore = await sentCounts(alice);
  await alice.fill(INPUT, 'é'.repeat(limits.text / 2 + 1));
  assertEq(await alice.textContent(COUNTER), '2 over', 'é counts as two bytes, as on the wire');
  assert(await alice.isDisabled('[data-testid="send-button"]'), 'send is disabled over the limit');
  assert(/too long/i.test(await noticeText(alice)), `the notice says why: ${await noticeText(alice)}`);
  await alice.press(INPUT, 'Enter');
  assertEq(await sentCounts(alice), sentBefore, 'Enter sends nothing over the limit');
  assertEq(await alice.inputValue(INPUT), 'é'.repeat(limits.text / 2 + 1), 'the text is kept');

  // Exactly at the limit it goes, and arrives whole.
  const exact = 'é'.repeat(limits.text / 2);
  await alice.fill(INPUT, exact);
  assertEq(await alice.textContent(COUNTER), '0 left', 'counter at the limit');
  await alice.press(INPUT, 'Enter');
  await waitMessage(bob, 'alice', exact);
  assert(await alice.isHidden(COUNTER), 'counter gone with the sent text');

  // ---- the rate: more messages at once than the burst allows
  const burst = limits.burst + 10;
  const held = await alice.evaluate((n) => {
    const input = document.querySelector('[data-testid="message-input"]');
    for (let i = 0; i < n; i++) {
      input.value = 'burst ' + i;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
      if (input.value !== '') return i; // not sent: kept in the box
    }
    return n;
  }, burst);
  assert(held > 0 && held < burst, `the page held back message ${held} of ${burst}`);
  assert(/faster/i.test(await noticeText(alice)), `the page says why: ${await noticeText(alice)}`);
  assertEq(await alice.inputValue(INPUT), `burst ${held}`, 'the held-back message stays in the box');
  await waitMessage(bob, 'alice', `burst ${held - 1}`);
  const refused = await alice.evaluate(() => window.__received.filter((e) => e.type === 'error').map((e) => e.code));
  assertEq(refused, [], 'the server refused nothing');

  // Once the rate allows again, Enter sends it.
  await alice.waitForFunction(() => {
    const input = document.querySelector('[data-testid="message-input"]');
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    return input.value === '';
  }, null, { polling: 250 });
  await waitMessage(bob, 'alice', `burst ${held}`);
});
