// A server with --auth-secret, seen from its join form. A visitor without a
// sign-in link is told, before pressing Join, that this server needs one.
// With a link the name field is the link's, read-only, and says why; "Sign
// out" forgets the link (also across a reload), frees the name and brings
// the need of a link back. The form stays axe-clean in light, dark and on a
// phone.
import {
  run, openPage, waitOnline, uniqueRoom, base, assert, assertEq, axeCheck,
} from './lib.mjs';

const [aliceToken] = process.argv.slice(3);

/** What the join form says about signing in. */
function signInState(page) {
  return page.evaluate(() => {
    const name = document.querySelector('[data-testid="join-name"]');
    const visible = (id) => !document.querySelector(`[data-testid="${id}"]`).hidden;
    const described = (name.getAttribute('aria-describedby') || '').split(' ').filter(Boolean)
      .map((id) => document.getElementById(id).textContent.trim());
    return {
      name: name.value,
      readOnly: name.readOnly,
      needsLink: visible('join-needs-link'),
      signedIn: visible('signed-in'),
      described,
      kept: localStorage.getItem('wschat.token') !== null,
    };
  });
}

async function waitNeedsLink(page) {
  await page.waitForSelector('[data-testid="join-needs-link"]', { state: 'visible' });
}

run('the join form says what signing in needs', async (browser) => {
  assert(aliceToken, 'usage: signin_wording.mjs ADDR ALICE_TOKEN');
  const room = uniqueRoom('wording');

  // ---- a visitor without a link is told before pressing anything
  const visitor = await openPage(browser, { label: 'visitor' });
  await waitNeedsLink(visitor);
  const told = await visitor.textContent('[data-testid="join-needs-link"]');
  assert(/only people with a sign-in link/.test(told), `the visitor is told: ${told}`);
  const plain = await signInState(visitor);
  assertEq([plain.readOnly, plain.signedIn, plain.described], [false, false, []], 'no link: the name is free and no Sign out');
  await axeCheck(visitor, 'join form needing a link, light');

  // ---- with a link: the name is the link's, and the field says why
  const alice = await openPage(browser, { label: 'alice' });
  await alice.goto(base + '#token=' + aliceToken);
  await alice.waitForFunction(() => document.querySelector('[data-testid="join-name"]').value === 'alice');
  await alice.waitForSelector('[data-testid="sign-out"]', { state: 'visible' });
  let state = await signInState(alice);
  assertEq([state.readOnly, state.needsLink, state.kept], [true, false, true], 'locked to the link, which is kept');
  assert(state.described.length === 1 && /sign-in link gives you this name/.test(state.described[0]),
    `the name field is described by why it is fixed: ${JSON.stringify(state.described)}`);
  await axeCheck(alice, 'signed in, light');
  await alice.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(alice, 'signed in, dark');
  await alice.emulateMedia({ colorScheme: 'light' });

  // The link's name still goes in and out of the room; the form keeps it.
  await alice.fill('[data-testid="join-room"]', room);
  await alice.click('[data-testid="join-button"]');
  await waitOnline(alice);
  await alice.click('[data-testid="leave-button"]');
  await alice.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  assertEq((await signInState(alice)).readOnly, true, 'still signed in after leaving');

  // ---- Sign out forgets the link
  await alice.click('[data-testid="sign-out"]');
  await waitNeedsLink(alice);
  state = await signInState(alice);
  assertEq([state.readOnly, state.signedIn, state.described, state.kept], [false, false, [], false], 'signed out: the link is forgotten');
  assert(await alice.evaluate(() => document.activeElement === document.querySelector('[data-testid="join-name"]')), 'focus goes to the name field');
  await alice.fill('[data-testid="join-name"]', 'someone');
  await alice.reload();
  await waitNeedsLink(alice);
  state = await signInState(alice);
  assertEq([state.readOnly, state.signedIn, state.kept], [false, false, false], 'a reload does not sign back in');

  // Joining now is refused, as the form said it would be.
  await alice.fill('[data-testid="join-name"]', 'alice');
  await alice.fill('[data-testid="join-room"]', room);
  await alice.click('[data-testid="join-button"]');
  const error = await alice.waitForSelector('[data-testid="join-error"]', { state: 'visible' });
  assert(/sign-in link/i.test(await error.textContent()), `refused for want of a link: ${await error.textContent()}`);
  state = await signInState(alice);
  assertEq(state.described.length, 1, 'the error describes the name field');

  // ---- a phone, signed in
  const phone = await openPage(browser, { label: 'phone', viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await phone.goto(base + '#token=' + aliceToken);
  await phone.waitForSelector('[data-testid="sign-out"]', { state: 'visible' });
  await axeCheck(phone, 'signed in, phone, light');
  await phone.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(phone, 'signed in, phone, dark');
  await phone.click('[data-testid="sign-out"]');
  await waitNeedsLink(phone);
  await axeCheck(phone, 'needing a link, phone, dark');
});
