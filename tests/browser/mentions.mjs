// @mentions: typing "@al" offers alice from the people in the room (a list
// box, chosen with the keyboard alone); the mention is highlighted for
// everyone and the bubble marked for alice. While alice's tab is hidden, a
// mention raises a desktop notification (only once she has asked for them:
// the browser's permission is asked then, never on load) and counts apart
// from other unread messages in the title; back on the tab, a divider sits
// above the first message that came while she was away, scrolled into view.
//
// A headless page is always visible, so alice's page is given a
// `document.hidden` it can be told about (`__setHidden`, which also fires
// `visibilitychange` as the browser would), and a stand-in for the
// Notification API that records what it is asked to show and whether the
// page asked for permission.
import {
  run, person, say, waitMessage, waitPresence, uniqueRoom, assert, assertEq, tabTo, expectFocusVisible,
} from './lib.mjs';

const awayAndNotes = () => {
  let hidden = false;
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
  window.__setHidden = (h) => {
    hidden = h;
    document.dispatchEvent(new Event('visibilitychange'));
  };
  let permission = 'default';
  window.__asked = 0;
  window.__notes = [];
  window.Notification = class {
    constructor(title, options) { window.__notes.push({ title, body: (options || {}).body }); }
    static get permission() { return permission; }
    static requestPermission() {
      window.__asked++;
      permission = 'granted';
      return Promise.resolve(permission);
    }
    addEventListener() {}
    close() {}
  };
};

/** The composer's list of names: what it offers, which is chosen, and what the text box points at. */
function listbox(page) {
  return page.evaluate(() => {
    const list = document.querySelector('[data-testid="mention-list"]');
    const input = document.querySelector('[data-testid="message-input"]');
    const active = input.getAttribute('aria-activedescendant');
    return {
      shown: !list.hidden,
      options: Array.from(list.querySelectorAll('[role="option"]')).map((o) => o.dataset.name),
      selected: Array.from(list.querySelectorAll('[role="option"][aria-selected="true"]')).map((o) => o.dataset.name),
      active: active ? document.getElementById(active)?.dataset.name : null,
      value: input.value,
    };
  });
}

run('mentions are offered, highlighted, counted and notified', async (browser) => {
  const room = uniqueRoom('mentions');
  const alice = await person(browser, 'alice', room, { initScript: awayAndNotes });
  const bob = await person(browser, 'bob', room);
  const carol = await person(browser, 'carol', room);
  for (const p of [alice, bob, carol]) await waitPresence(p, ['alice', 'bob', 'carol']);
  const input = '[data-testid="message-input"]';

  // ---- completion: "@al" offers alice; Tab accepts
  await bob.locator(input).pressSequentially('hi @al');
  await bob.waitForSelector('[data-testid="mention-list"]:not([hidden])');
  assertEq(await listbox(bob), { shown: true, options: ['alice'], selected: ['alice'], active: 'alice', value: 'hi @al' }, '@al offers alice');
  await bob.keyboard.press('Tab');
  assertEq(await listbox(bob), { shown: false, options: [], selected: [], active: null, value: 'hi @alice ' }, 'Tab puts the name in');
  await bob.locator(input).pressSequentially('see **this**');
  await bob.keyboard.press('Enter');
  await waitMessage(alice, 'bob', 'hi @alice see this');

  // ---- Up and Down choose, Enter accepts (and does not send), Escape closes
  await carol.locator(input).pressSequentially('@');
  await carol.waitForSelector('[data-testid="mention-list"]:not([hidden])');
  assertEq((await listbox(carol)).options, ['alice', 'bob'], '"@" offers everyone else');
  await carol.keyboard.press('ArrowDown');
  assertEq((await listbox(carol)).active, 'bob', 'Down chooses the next');
  await carol.keyboard.press('ArrowUp');
  await carol.keyboard.press('ArrowUp');
  assertEq((await listbox(carol)).active, 'bob', 'Up from the first goes round to the last');
  await carol.keyboard.press('Enter');
  assertEq((await listbox(carol)).value, '@bob ', 'Enter puts the name in rather than sending');
  await carol.locator(input).pressSequentially('and @a');
  await carol.waitForSelector('[data-testid="mention-list"]:not([hidden])');
  await carol.keyboard.press('Escape');
  assertEq(await listbox(carol), { shown: false, options: [], selected: [], active: null, value: '@bob and @a' }, 'Escape closes the list, the text stays');
  await carol.fill(input, '');

  // ---- highlighted for everyone; marked only for the one mentioned
  const seen = (page) => page.evaluate(() => {
    const bubble = Array.from(document.querySelectorAll('[data-testid="message"][data-from="bob"]')).at(-1);
    return {
      mentions: Array.from(bubble.querySelectorAll('[data-testid="mention"]')).map((m) => [m.dataset.name, m.textContent]),
      bold: Array.from(bubble.querySelectorAll('strong')).map((b) => b.textContent),
      me: bubble.dataset.mentionsMe === 'true',
      said: bubble.textContent.includes('(mentions you)'),
    };
  });
  await waitMessage(carol, 'bob', 'hi @alice see this');
  assertEq(await seen(alice), { mentions: [['alice', '@alice']], bold: ['this'], me: true, said: true }, 'alice sees her mention marked, and a screen reader says so');
  assertEq(await seen(carol), { mentions: [['alice', '@alice']], bold: ['this'], me: false, said: false }, 'carol sees the mention, not marked as hers');

  // ---- notifications: asked for permission only when alice opts in
  assertEq(await alice.evaluate(() => window.__asked), 0, 'no permission asked on load');
  const notify = alice.getByRole('checkbox', { name: 'Notify me when mentioned' });
  assert(!(await notify.isChecked()), 'notifications start off');
  await alice.focus(input);
  await tabTo(alice, '[data-testid="notify-mentions"]');
  await expectFocusVisible(alice);
  await alice.keyboard.press('Space');
  await alice.waitForFunction(() => document.querySelector('[data-testid="notify-mentions"]').checked);
  assertEq(await alice.evaluate(() => window.__asked), 1, 'permission asked once, when opted in');

  // ---- away: three messages, one a mention
  const base = `#${room} · wschat`;
  await alice.evaluate(() => window.__setHidden(true));
  await say(bob, 'plain one');
  await waitMessage(alice, 'bob', 'plain one');
  await say(carol, '@alice can you look?');
  await waitMessage(alice, 'carol', '@alice can you look?');
  await say(bob, 'and another');
  await waitMessage(alice, 'bob', 'and another');
  assertEq(await alice.title(), `(3, @1) ${base}`, 'the title counts the mention apart');
  assertEq(await alice.evaluate(() => window.__notes), [{ title: `carol mentioned you in #${room}`, body: '@alice can you look?' }], 'one notification, for the mention');

  // ---- back: the title clears, the divider is above the first message that came while away
  await alice.evaluate(() => window.__setHidden(false));
  assertEq(await alice.title(), base, 'back on the tab: no count');
  const divider = () => alice.evaluate(() => {
    const dividers = document.querySelectorAll('[data-testid="unread-divider"]');
    const next = dividers[0] && dividers[0].nextElementSibling;
    return {
      count: dividers.length,
      text: dividers[0] && dividers[0].textContent,
      next: next && next.querySelector('[data-testid="message-text"]').textContent,
    };
  });
  assertEq(await divider(), { count: 1, text: 'New since you left', next: 'plain one' }, 'the divider is above the first unseen message');

  // ---- a mention while the tab is seen notifies nobody
  await say(carol, '@alice thanks');
  await waitMessage(alice, 'carol', '@alice thanks');
  assertEq((await alice.evaluate(() => window.__notes)).length, 1, 'no notification while the tab is seen');
  assertEq(await alice.title(), base, 'nothing counted while the tab is seen');

  // ---- away again, for longer: the divider moves to the new first unseen
  // message, and coming back shows it rather than the newest message
  await alice.evaluate(() => window.__setHidden(true));
  await say(bob, 'later news');
  for (let i = 1; i <= 24; i++) await say(bob, `more news ${i}`);
  await waitMessage(alice, 'bob', 'more news 24');
  assertEq(await alice.title(), `(25) ${base}`, 'twenty-five unread, no mention');
  await alice.evaluate(() => window.__setHidden(false));
  assertEq(await divider(), { count: 1, text: 'New since you left', next: 'later news' }, 'one divider, above the newest absence');
  const view = await alice.evaluate(() => {
    const list = document.querySelector('[data-testid="messages"]').getBoundingClientRect();
    const line = document.querySelector('[data-testid="unread-divider"]').getBoundingClientRect();
    return {
      dividerShown: line.top >= list.top && line.bottom <= list.bottom,
      newMessagesButton: !document.querySelector('[data-testid="new-messages"]').hidden,
    };
  });
  assertEq(view, { dividerShown: true, newMessagesButton: true }, 'back on the tab, the divider is in view and the newest is a button away');
});
