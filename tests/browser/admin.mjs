// The admin view in Chromium: a wrong token is refused, the right one shows
// the rooms and who is in them; Kick (confirmed) removes bob (whose page says so and
// does not come back by itself), Ban removes alice and refuses her name
// with the ban's end, and lifting the ban lets her in again. The admin
// page keeps to the Content-Security-Policy (lib.mjs fails on any report)
// and axe-core finds nothing serious on it.
import {
  run, person, openPage, join, waitPresence, uniqueRoom, base, assert, assertEq, axeCheck, WATCHDOG_MS,
} from './lib.mjs';

const token = process.argv[3];

async function signIn(page, value) {
  await page.fill('[data-testid="admin-token"]', value);
  await page.fill('[data-testid="admin-name"]', 'browser-moderator');
  await page.click('[data-testid="signin-button"]');
}

/** Waits until the admin view lists exactly `names` in `room`. */
async function waitListed(admin, room, names) {
  await admin.waitForFunction(
    ([r, want]) => {
      const got = Array.from(document.querySelectorAll('[data-testid="person"]'))
        .filter((p) => p.dataset.room === r).map((p) => p.dataset.name).sort();
      return JSON.stringify(got) === JSON.stringify(want.slice().sort());
    },
    [room, names],
    { timeout: WATCHDOG_MS },
  );
}

run('admin view kicks and bans', async (browser) => {
  assert(token, 'usage: admin.mjs ADDR ADMIN_TOKEN');
  const room = uniqueRoom('mod');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  await waitPresence(alice, ['alice', 'bob']);

  const admin = await openPage(browser, { label: 'admin' });
  await admin.goto(base + 'admin');
  await admin.waitForSelector('[data-testid="signin-form"]', { state: 'visible' });
  await axeCheck(admin, 'admin sign-in');

  // A wrong token is refused on the form.
  await signIn(admin, 'not the admin token at all');
  const error = await admin.waitForSelector('[data-testid="signin-error"]', { state: 'visible' });
  assert(/refused/i.test(await error.textContent()), 'the form says the token was refused');
  assert(await admin.isHidden('[data-testid="admin-screen"]'), 'nothing is shown');

  await signIn(admin, token);
  await admin.waitForSelector('[data-testid="admin-screen"][data-loaded="true"]');
  await waitListed(admin, room, ['alice', 'bob']);
  const connections = await admin.$eval(`[data-testid="metric"][data-label="Open connections"] dd`, (d) => Number(d.textContent));
  assert(connections >= 2, `the metrics show the open connections (${connections})`);
  await axeCheck(admin, 'admin view');

  // Kick bob: his page says a moderator removed him and stays out.
  await admin.click(`[data-testid="person"][data-room="${room}"][data-name="bob"] [data-testid="kick"]`);
  await admin.click('[data-testid="confirm-ok"]');
  const bobError = await bob.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  assert(/moderator removed you/i.test(await bobError.textContent()), `bob is told: ${await bobError.textContent()}`);
  await waitPresence(alice, ['alice']);
  await waitListed(admin, room, ['alice']);
  assert(await bob.isVisible('[data-testid="join-form"]'), 'bob is back on the join form');
  await admin.waitForSelector('[data-testid="admin-toast"]');

  // Ban alice for 30 minutes.
  await admin.fill('[data-testid="ban-minutes"]', '30');
  const before = Date.now();
  await admin.click(`[data-testid="person"][data-room="${room}"][data-name="alice"] [data-testid="ban"]`);
  await admin.click('[data-testid="confirm-ok"]');
  const aliceError = await alice.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  assert(/banned/i.test(await aliceError.textContent()), `alice is told: ${await aliceError.textContent()}`);
  const ban = await admin.waitForSelector('[data-testid="banned"][data-name="alice"]');
  const until = Number(await ban.getAttribute('data-until'));
  assert(until >= before + 30 * 60000 - 1000 && until <= Date.now() + 30 * 60000, `the ban ends in 30 minutes (${until})`);
  await waitListed(admin, room, []);

  // Joining again is refused, saying until when.
  await alice.click('[data-testid="join-button"]');
  await alice.waitForFunction(() => /banned the name “alice” until/i.test(document.querySelector('[data-testid="join-error"]').textContent));
  assert(await alice.isHidden('[data-testid="chat-screen"]'), 'alice stays out');

  // Lifting the ban lets her in.
  await admin.click('[data-testid="banned"][data-name="alice"] [data-testid="unban"]');
  await admin.waitForSelector('[data-testid="bans-empty"]', { state: 'visible' });
  await join(alice, 'alice', room);
  await waitListed(admin, room, ['alice']);
  assertEq(await alice.textContent('[data-testid="people-count"]'), '1', 'alice alone in the room');
});
