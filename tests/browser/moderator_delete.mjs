// A server with --auth-secret: a moderator's sign-in link (`wschat token
// NAME --mod`) offers "Delete" on everyone's messages, and deleting one of
// them removes it before its sender; the sender's own page offers no one
// else's.
import { run, openPage, waitOnline, waitMessage, say, uniqueRoom, base, assert, assertEq } from './lib.mjs';

const [aliceToken, moToken] = process.argv.slice(3);

async function signIn(browser, label, token, name, room) {
  const page = await openPage(browser, { label });
  await page.goto(base + '#token=' + token);
  await page.waitForFunction((n) => document.querySelector('[data-testid="join-name"]').value === n, name);
  await page.fill('[data-testid="join-room"]', room);
  await page.click('[data-testid="join-button"]');
  await waitOnline(page);
  return page;
}

run('a moderator deletes anyone\'s message', async (browser) => {
  assert(aliceToken && moToken, 'usage: moderator_delete.mjs ADDR ALICE_TOKEN MOD_TOKEN');
  const room = uniqueRoom('moderated');
  const alice = await signIn(browser, 'alice', aliceToken, 'alice', room);
  const mo = await signIn(browser, 'mo', moToken, 'mo', room);
  await say(mo, 'house rules');
  await waitMessage(alice, 'mo', 'house rules');
  await say(alice, 'spam spam spam');
  await waitMessage(mo, 'alice', 'spam spam spam');

  const buttons = (page, from) => page.evaluate((from) => Array.from(document.querySelectorAll(
    `[data-testid="message"][data-from="${from}"] [data-testid="message-actions"] button`)).map((b) => b.textContent), from);
  assertEq(await buttons(alice, 'mo'), ['React'], 'alice may only react to the moderator\'s message');
  assertEq(await buttons(mo, 'alice'), ['Delete', 'React'], 'the moderator may delete alice\'s');

  const spam = mo.locator('[data-testid="message"][data-from="alice"]');
  await spam.hover();
  await spam.getByRole('button', { name: 'Delete', exact: true }).click();
  for (const page of [alice, mo]) {
    await page.waitForFunction(() => document.querySelector('[data-testid="message"][data-from="alice"]')
      ?.dataset.deleted === 'true');
  }
  assertEq(await alice.textContent('[data-testid="message"][data-from="alice"] [data-testid="message-text"]'),
    'Message deleted', 'alice sees her message deleted');
});
