// The admin view of one of two instances sharing their rooms through one
// Redis (run as `node admin_instances.mjs A TOKEN ROOM`, where ROOM holds
// ann on instance A and bob on instance B, both registered): it lists both
// people, each with the instance they are on, and says that both instances
// answered; once instance B is killed (asked of the test with `kill b`), a
// refresh says loudly that one instance did not answer and that its people
// are not listed. axe-core finds nothing serious on either view.
import {
  run, openPage, base, assert, serverControl, axeCheck, WATCHDOG_MS,
} from './lib.mjs';

const [token, room] = process.argv.slice(3);

/** The people the view lists in the room, as `name@instance`, sorted. */
async function listed(admin) {
  return admin.$$eval('[data-testid="person"]', (people, r) => people
    .filter((p) => p.dataset.room === r)
    .map((p) => p.dataset.name + '@' + (p.dataset.instance || '')).sort(), room);
}

run('admin view across instances', async (browser) => {
  assert(token && room, 'usage: admin_instances.mjs ADDR ADMIN_TOKEN ROOM');
  const admin = await openPage(browser, { label: 'admin' });
  await admin.goto(base + 'admin');
  await admin.fill('[data-testid="admin-token"]', token);
  await admin.click('[data-testid="signin-button"]');
  await admin.waitForSelector('[data-testid="admin-screen"][data-loaded="true"]');

  const both = await listed(admin);
  assert(both.length === 2 && both[0].startsWith('ann@') && both[1].startsWith('bob@'), `ann and bob listed: ${both}`);
  const [annOn, bobOn] = both.map((p) => p.split('@')[1]);
  assert(annOn && bobOn && annOn !== bobOn, `each with the instance they are on: ${both}`);
  const shown = await admin.textContent(`[data-testid="person"][data-name="bob"] [data-testid="person-instance"]`);
  assert(shown === 'on ' + bobOn.slice(0, 8), `bob's line names his instance: ${shown}`);
  const reach = admin.locator('[data-testid="reach"]');
  assert((await reach.textContent()) === '2 instances answered.', `the view says who answered: ${await reach.textContent()}`);
  await axeCheck(admin, 'admin view of two instances');

  await serverControl('kill b');
  await admin.click('[data-testid="refresh"]');
  await admin.waitForFunction(() => document.querySelector('[data-testid="reach"]').classList.contains('admin-warning'), null, { timeout: WATCHDOG_MS });
  const warning = await reach.textContent();
  assert(warning.includes('1 instance did not') && warning.includes(bobOn.slice(0, 8)) && warning.includes('not listed'),
    `the view names the instance that did not answer: ${warning}`);
  const left = await listed(admin);
  assert(left.length === 1 && left[0] === 'ann@' + annOn, `only ann, who is still there: ${left}`);
  await axeCheck(admin, 'admin view with an instance missing');
});
