// The admin view's operator details. "Messages received" counts what people
// sent (two messages), not their joins or typing. Kick and Ban ask first in
// the page's own modal dialog, which says what will happen, takes the
// focus, is axe-clean in light, dark and on a phone, and does nothing when
// cancelled (by its button or Escape; the test that runs this script checks
// the log holds one kick and one ban). Bans say they end with a restart,
// and a join refused by a ban leaves no empty room in the list.
import {
  run, person, openPage, say, waitMessage, waitPresence, uniqueRoom, base, assert, assertEq, axeCheck, WATCHDOG_MS,
} from './lib.mjs';

const token = process.argv[3];

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

/** Refreshes the admin view and waits until it has drawn the answer (rooms, then the metrics). */
async function refreshed(admin) {
  const metrics = admin.waitForResponse((r) => r.url().endsWith('/metrics'));
  await admin.click('[data-testid="refresh"]');
  await metrics;
  await admin.waitForFunction(() => document.querySelector('[data-testid="metric"][data-label="Messages received"]'));
}

function metric(admin, label) {
  return admin.$eval(`[data-testid="metric"][data-label="${label}"] dd`, (d) => d.textContent);
}

/** The confirmation dialog as shown: open, its texts, and what has focus. */
function dialogState(admin) {
  return admin.evaluate(() => {
    const d = document.querySelector('[data-testid="confirm"]');
    return {
      open: d.open,
      modal: d.matches(':modal'),
      title: d.querySelector('[data-testid="confirm-title"]').textContent,
      text: d.querySelector('[data-testid="confirm-text"]').textContent,
      ok: d.querySelector('[data-testid="confirm-ok"]').textContent,
      focus: document.activeElement ? document.activeElement.dataset.testid : null,
    };
  });
}

async function waitDialog(admin, open) {
  await admin.waitForFunction((o) => document.querySelector('[data-testid="confirm"]').open === o, open);
}

run('admin view confirms, counts messages and says bans end with a restart', async (browser) => {
  assert(token, 'usage: admin_confirm.mjs ADDR ADMIN_TOKEN');
  const room = uniqueRoom('ops');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  await waitPresence(alice, ['alice', 'bob']);
  await alice.locator('[data-testid="message-input"]').pressSequentially('typing first');
  await alice.fill('[data-testid="message-input"]', '');
  await say(alice, 'one');
  await say(bob, 'two');
  await waitMessage(alice, 'bob', 'two');
  await waitMessage(bob, 'alice', 'one');

  const admin = await openPage(browser, { label: 'admin' });
  await admin.goto(base + 'admin');
  await admin.fill('[data-testid="admin-token"]', token);
  await admin.fill('[data-testid="admin-name"]', 'browser-moderator');
  await admin.click('[data-testid="signin-button"]');
  await admin.waitForSelector('[data-testid="admin-screen"][data-loaded="true"]');
  await waitListed(admin, room, ['alice', 'bob']);

  // ---- two messages, whatever else was sent (two joins, typing)
  await refreshed(admin);
  assertEq(await metric(admin, 'Messages received'), '2', 'Messages received counts the two messages only');

  // ---- Kick asks first; Escape and Cancel do nothing
  const kick = `[data-testid="person"][data-room="${room}"][data-name="bob"] [data-testid="kick"]`;
  await admin.click(kick);
  await waitDialog(admin, true);
  let dialog = await dialogState(admin);
  assertEq([dialog.modal, dialog.title, dialog.ok, dialog.focus], [true, `Kick bob from #${room}?`, 'Kick bob', 'confirm-cancel'],
    'a modal question, with Cancel focused');
  assert(/joining again/.test(dialog.text), `it says what a kick does: ${dialog.text}`);
  await axeCheck(admin, 'kick confirmation, light');
  await admin.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(admin, 'kick confirmation, dark');
  await admin.emulateMedia({ colorScheme: 'light' });
  await admin.keyboard.press('Escape');
  await waitDialog(admin, false);
  await admin.click(kick);
  await waitDialog(admin, true);
  await admin.click('[data-testid="confirm-cancel"]');
  await waitDialog(admin, false);
  // Confirmed, it happens.
  await admin.click(kick);
  await admin.click('[data-testid="confirm-ok"]');
  await waitDialog(admin, false);
  const bobError = await bob.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  assert(/moderator removed you/i.test(await bobError.textContent()), `bob is told: ${await bobError.textContent()}`);
  await waitPresence(alice, ['alice']);

  // ---- Ban asks first, saying it ends with the server's restart
  await admin.fill('[data-testid="ban-minutes"]', '30');
  const ban = `[data-testid="person"][data-room="${room}"][data-name="alice"] [data-testid="ban"]`;
  await admin.setViewportSize({ width: 390, height: 844 });
  await admin.click(ban);
  await waitDialog(admin, true);
  dialog = await dialogState(admin);
  assertEq([dialog.title, dialog.ok, dialog.focus], ['Ban the name alice?', 'Ban alice', 'confirm-cancel'], 'the ban question');
  assert(/when the server restarts/.test(dialog.text) && /30 minutes/.test(dialog.text), `it says how long: ${dialog.text}`);
  await axeCheck(admin, 'ban confirmation, phone, light');
  await admin.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(admin, 'ban confirmation, phone, dark');
  await admin.emulateMedia({ colorScheme: 'light' });
  await admin.click('[data-testid="confirm-cancel"]');
  await waitDialog(admin, false);
  await admin.setViewportSize({ width: 1100, height: 720 });
  await admin.click(ban);
  await admin.click('[data-testid="confirm-ok"]');
  const aliceError = await alice.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  assert(/banned/i.test(await aliceError.textContent()), `alice is told: ${await aliceError.textContent()}`);
  const until = await admin.waitForSelector('[data-testid="banned"][data-name="alice"] [data-testid="ban-until"]');
  assert(/or until restart$/.test(await until.textContent()), `the ban says it ends with a restart: ${await until.textContent()}`);
  assert(/restart of the server lifts them/.test(await admin.textContent('[data-testid="bans-kept"]')), 'the bans say where they are kept');

  // ---- a join refused by the ban leaves no room behind
  const elsewhere = uniqueRoom('elsewhere');
  await alice.fill('[data-testid="join-room"]', elsewhere);
  await alice.click('[data-testid="join-button"]');
  await alice.waitForFunction(() => /banned the name “alice” until/i.test(document.querySelector('[data-testid="join-error"]').textContent));
  await refreshed(admin);
  const rooms = await admin.$$eval('[data-testid="room"]', (r) => r.map((x) => x.dataset.room));
  assert(!rooms.includes(elsewhere), `no room ${elsewhere} in ${JSON.stringify(rooms)}`);
  await axeCheck(admin, 'admin view with a ban');
});
