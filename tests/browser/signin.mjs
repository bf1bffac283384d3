// A server with --auth-secret: the page given a sign-in link
// (`/#token=TOKEN`) takes the token's name, locked, out of the address bar;
// a second tab of the same browser is the same person (one presence entry,
// no "name taken", never "Offline"); a page without a link is told it
// needs one.
import { run, openPage, waitOnline, waitPresence, uniqueRoom, base, assert, assertEq } from './lib.mjs';

const [aliceToken, bobToken] = process.argv.slice(3);

run('sign-in links name the person', async (browser) => {
  assert(aliceToken && bobToken, 'usage: signin.mjs ADDR ALICE_TOKEN BOB_TOKEN');
  const room = uniqueRoom('signin');

  const alice = await openPage(browser, { label: 'alice' });
  // Following a link to the page it is on reloads it with the token.
  await alice.goto(base + '#token=' + aliceToken);
  await alice.waitForFunction(() => document.querySelector('[data-testid="join-name"]').value === 'alice');
  await alice.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  assert(await alice.$eval('[data-testid="join-name"]', (n) => n.readOnly), 'and cannot be changed');
  assert(!(await alice.evaluate(() => location.hash.includes('token'))), 'the token left the address bar');
  await alice.fill('[data-testid="join-room"]', room);
  await alice.click('[data-testid="join-button"]');
  await waitOnline(alice);

  const bob = await openPage(browser, { label: 'bob' });
  await bob.goto(base + '#token=' + bobToken);
  await bob.waitForFunction(() => document.querySelector('[data-testid="join-name"]').value === 'bob');
  await bob.fill('[data-testid="join-room"]', room);
  await bob.click('[data-testid="join-button"]');
  await waitOnline(bob);
  await waitPresence(bob, ['alice', 'bob']);

  // Alice's second tab: the same browser keeps the token; it goes back in
  // as alice, and bob still sees one alice.
  const tab = await alice.context().newPage();
  await tab.addInitScript(() => {
    window.__statuses = [];
    document.addEventListener('DOMContentLoaded', () => {
      const status = document.querySelector('[data-testid="status"]');
      new MutationObserver(() => window.__statuses.push(status.textContent))
        .observe(status, { subtree: true, childList: true, characterData: true });
    });
  });
  await tab.goto(base);
  await waitOnline(tab);
  await waitPresence(tab, ['alice', 'bob']);
  await waitPresence(bob, ['alice', 'bob']);
  const statuses = await tab.evaluate(() => window.__statuses);
  assert(!statuses.some((s) => /offline/i.test(s)), `never shown as offline: ${JSON.stringify(statuses)}`);
  assertEq(await bob.textContent('[data-testid="people-count"]'), '2', 'two people, not three');

  // Closing one tab is no leave; closing both is.
  await tab.close();
  await alice.fill('[data-testid="message-input"]', 'still here');
  await alice.press('[data-testid="message-input"]', 'Enter');
  await bob.waitForFunction(() => Array.from(document.querySelectorAll('[data-testid="message-text"]')).some((t) => t.textContent === 'still here'));
  assertEq(await bob.textContent('[data-testid="people-count"]'), '2', 'alice is still here');
  await alice.close();
  await waitPresence(bob, ['bob']);

  // A page without a link is told it needs one.
  const stranger = await openPage(browser, { label: 'stranger' });
  await stranger.fill('[data-testid="join-name"]', 'mallory');
  await stranger.fill('[data-testid="join-room"]', room);
  await stranger.click('[data-testid="join-button"]');
  const error = await stranger.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  assert(/sign-in link/i.test(await error.textContent()), `the stranger is told: ${await error.textContent()}`);
});
