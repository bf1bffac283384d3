// Reading a room of 160 messages further back than its replay (the server
// runs with `--history 10`): scrolling to the top draws the older page
// above, keeping the message being read where it was, page by page down to
// the first message, once each; "Load older messages" does the same; and the search box finds
// a message by its words, shows who said it, when and what, and leads to
// it, loading the pages above until it is shown.
import { run, person, uniqueRoom, assert, assertEq, axeCheck } from './lib.mjs';

const N = 160;

/** Ids of the messages the page shows, in order. */
function shownIds(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('[data-testid="message"]'))
    .map((b) => Number(b.dataset.id)));
}

const all = Array.from({ length: N }, (_, i) => i + 1);
const newest = all.slice(N - 10);

run('scrolling back and searching', async (browser) => {
  const room = uniqueRoom('back');
  const view = { viewport: { width: 900, height: 560 } };
  const bob = await person(browser, 'bob', room, view);
  // Someone else fills the room: N messages, message 7 to be found.
  const acked = await bob.evaluate(([r, n]) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/ws?room=${encodeURIComponent(r)}&name=alice`, 'wschat.v1');
    let got = 0;
    ws.onerror = () => reject(new Error('seeding socket failed'));
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'welcome') {
        for (let i = 1; i <= n; i++) {
          const text = i === 7 ? 'a needle in the haystack' : `line ${i}`;
          ws.send(JSON.stringify({ type: 'message', text }));
        }
      }
      if (m.type === 'message' && m.from === 'alice' && ++got === n) {
        ws.close();
        resolve(got);
      }
    };
  }), [room, N]);
  assertEq(acked, N, 'the room was filled');

  // Carol comes later: her replay is the newest 10, and more can be loaded.
  const carol = await person(browser, 'carol', room, view);
  await carol.waitForFunction((n) => document.querySelectorAll('[data-testid="message"]').length === n, 10);
  assertEq(await shownIds(carol), newest, 'the replay is the newest ten');
  await carol.waitForSelector('[data-testid="load-older"]', { state: 'visible' });

  // She scrolls to the top: the page above comes, and what she was reading
  // (the first of her replay, then at the top) stays where it was on the
  // screen.
  const top = newest[0];
  const before = await carol.evaluate((id) => {
    const list = document.querySelector('[data-testid="messages"]');
    list.scrollTop = 0;
    return document.querySelector(`[data-testid="message"][data-id="${id}"]`).getBoundingClientRect().top;
  }, top);
  await carol.waitForSelector(`[data-testid="message"][data-id="${top - 1}"]`, { state: 'attached' });
  const after = await carol.evaluate((id) => document.querySelector(`[data-testid="message"][data-id="${id}"]`).getBoundingClientRect().top, top);
  assert(Math.abs(after - before) <= 2, `message ${top} stayed in place: ${before} then ${after}`);
  // And on, page by page, to the room's first message.
  while (!(await carol.evaluate(() => document.querySelector('[data-testid="message"][data-id="1"]')))) {
    const shown = (await shownIds(carol)).length;
    await carol.evaluate(() => { document.querySelector('[data-testid="messages"]').scrollTop = 0; });
    await carol.waitForFunction((n) => document.querySelectorAll('[data-testid="message"]').length > n, shown);
  }
  assertEq(await shownIds(carol), all, 'every message once, in order');
  // Nothing older: the button goes, and scrolling up again asks nothing more.
  await carol.waitForSelector('[data-testid="load-older"]', { state: 'hidden' });
  const one = await carol.evaluate(() => document.querySelectorAll('.day-divider').length);
  assertEq(one, 1, 'one day divider where the pages meet');

  // Dave loads the older page with the button instead.
  const dave = await person(browser, 'dave', room, view);
  // His replay, the newest ten (on a busy machine a scroll event while the
  // replay is drawn may already have brought the page above: at least ten).
  await dave.waitForFunction((n) => document.querySelectorAll('[data-testid="message"]').length >= n, 10);
  assertEq((await shownIds(dave)).slice(-10), newest, 'his replay ends with the newest ten');
  while (!(await dave.evaluate(() => document.querySelector('[data-testid="message"][data-id="1"]')))) {
    const shown = (await shownIds(dave)).length;
    await dave.getByRole('button', { name: 'Load older messages' }).click();
    await dave.waitForFunction((n) => document.querySelectorAll('[data-testid="message"]').length > n, shown);
  }
  assertEq(await shownIds(dave), all, 'the button loads the rest, once each');
  await dave.waitForSelector('[data-testid="load-older"]', { state: 'hidden' });

  // Erin searches: the result says who, when and what, and leads to the
  // message, which her replay did not have.
  const erin = await person(browser, 'erin', room, view);
  await erin.waitForFunction((n) => document.querySelectorAll('[data-testid="message"]').length === n, 10);
  await erin.getByLabel('Search', { exact: true }).fill('Haystack NEEDLE');
  await erin.getByLabel('Search', { exact: true }).press('Enter');
  const result = erin.locator('[data-testid="search-result"]');
  await result.first().waitFor();
  assertEq(await result.count(), 1, 'one message holds both words');
  // The search box, its results and "Load older messages" meet WCAG AA
  // (axe-core), light and dark, desk and phone.
  await axeCheck(erin, 'search results and load older, light');
  await erin.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(erin, 'search results and load older, dark');
  await erin.setViewportSize({ width: 390, height: 844 });
  await axeCheck(erin, 'search results and load older, phone, dark');
  await erin.emulateMedia({ colorScheme: 'light' });
  await axeCheck(erin, 'search results and load older, phone');
  await erin.setViewportSize(view.viewport);
  assertEq(await result.locator('.search-from').textContent(), 'alice', 'its sender');
  assertEq(await result.locator('.search-text').textContent(), 'a needle in the haystack', 'its text');
  assert(/\d\d:\d\d/.test(await result.locator('time').textContent()), 'its time');
  await result.click();
  const found = erin.locator('[data-testid="message"][data-id="7"]');
  await found.waitFor();
  await erin.waitForFunction(() => {
    const b = document.querySelector('[data-testid="message"][data-id="7"]');
    const list = document.querySelector('[data-testid="messages"]').getBoundingClientRect();
    const r = b.getBoundingClientRect();
    return r.top >= list.top && r.bottom <= list.bottom && document.activeElement === b;
  });
  assertEq(await erin.evaluate(() => document.querySelector('[data-testid="message"][data-id="7"] [data-testid="message-text"]').textContent),
    'a needle in the haystack', 'the message found');
  // Nothing was drawn twice on the way.
  const ids = await shownIds(erin);
  assertEq(ids, [...new Set(ids)].sort((a, b) => a - b), 'in order, once each');

  // A search that finds nothing says so.
  await erin.getByLabel('Search', { exact: true }).fill('nowhere');
  await erin.getByLabel('Search', { exact: true }).press('Enter');
  await erin.waitForFunction(() => document.querySelector('[data-testid="search-status"]').textContent === 'No messages found.');
});
