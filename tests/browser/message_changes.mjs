// Editing, deleting and reacting: hovering or focusing a message offers
// "Edit", "Delete" (one's own) and "React"; the other person sees each
// change at once, an edited message says so, reactions show their counts
// with one's own pressed, a deleted message says "Message deleted", and a
// reload shows the messages as they stand.
import { run, person, say, waitMessage, waitOnline, uniqueRoom, assertEq, axeCheck } from './lib.mjs';

const bubble = (from, text) => `[data-testid="message"][data-from="${from}"]:has([data-testid="message-text"]:text-is("${text}"))`;

/** What a page shows of the message with id `id` (run in the page). */
function view(id) {
  const b = document.querySelector(`[data-testid="message"][data-id="${id}"]`);
  if (!b) return null;
  return {
    text: b.querySelector('[data-testid="message-text"]').textContent,
    edited: !b.querySelector('[data-testid="edited-mark"]').hidden,
    reactions: Array.from(b.querySelectorAll('[data-testid="reaction"]'))
      .map((r) => [r.dataset.emoji, Number(r.dataset.count), r.getAttribute('aria-pressed')]),
    buttons: Array.from(b.querySelectorAll('[data-testid="message-actions"] button')).map((x) => x.textContent),
  };
}

/** Waits until the page shows message `id` with every field of `expected`. */
async function until(page, id, expected, what) {
  try {
    await page.waitForFunction(([id, expected]) => {
      const b = document.querySelector(`[data-testid="message"][data-id="${id}"]`);
      if (!b) return false;
      const shown = {
        text: b.querySelector('[data-testid="message-text"]').textContent,
        edited: !b.querySelector('[data-testid="edited-mark"]').hidden,
        reactions: Array.from(b.querySelectorAll('[data-testid="reaction"]'))
          .map((r) => [r.dataset.emoji, Number(r.dataset.count), r.getAttribute('aria-pressed')]),
        buttons: Array.from(b.querySelectorAll('[data-testid="message-actions"] button')).map((x) => x.textContent),
      };
      return Object.entries(expected).every(([k, v]) => JSON.stringify(shown[k]) === JSON.stringify(v));
    }, [id, expected], { timeout: 5000 });
  } catch (e) {
    throw new Error(`${what}: ${JSON.stringify(await page.evaluate(view, id))} (${e.message.split('\n')[0]})`);
  }
}

run('message changes', async (browser) => {
  const room = uniqueRoom('changes');
  const alice = await person(browser, 'alice', room);
  const bob = await person(browser, 'bob', room);
  await say(alice, 'helo wrold');
  await waitMessage(bob, 'alice', 'helo wrold');
  const id = Number(await alice.getAttribute(bubble('alice', 'helo wrold'), 'data-id'));

  // Hovering her own message offers the three; bob's copy only React.
  const own = alice.locator(`[data-testid="message"][data-id="${id}"]`);
  await own.hover();
  for (const name of ['Edit', 'Delete', 'React']) {
    assertEq(await own.getByRole('button', { name, exact: true }).isVisible(), true, `alice sees ${name}`);
  }
  assertEq((await bob.evaluate(view, id)).buttons, ['React'], 'bob may only react to alice\'s message');

  // Edit: the text becomes a box; Enter sends.
  await own.getByRole('button', { name: 'Edit', exact: true }).click();
  const box = own.getByRole('textbox', { name: 'Edit message' });
  await box.fill('hello world');
  await box.press('Enter');
  await until(bob, id, { text: 'hello world', edited: true }, 'bob sees the edit');
  await until(alice, id, { text: 'hello world', edited: true }, 'alice sees her edit');

  // React from the keyboard: focus shows the buttons too.
  const theirs = bob.locator(`[data-testid="message"][data-id="${id}"]`);
  await theirs.getByRole('button', { name: 'React', exact: true }).focus();
  await theirs.getByRole('button', { name: 'React', exact: true }).press('Enter');
  await theirs.getByRole('button', { name: 'React with 👍' }).click();
  await until(alice, id, { reactions: [['👍', 1, 'false']] }, 'alice sees bob\'s 👍');
  await until(bob, id, { reactions: [['👍', 1, 'true']] }, 'bob\'s own is pressed');
  // Alice adds hers by the chip; bob takes his back.
  await own.locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await until(bob, id, { reactions: [['👍', 2, 'true']] }, 'two 👍');
  // The buttons, the reactions and the picker meet WCAG AA (axe-core).
  await theirs.hover();
  await theirs.getByRole('button', { name: 'React', exact: true }).click();
  await axeCheck(bob, 'a message with its buttons, reactions and picker');
  await bob.emulateMedia({ colorScheme: 'dark' });
  await axeCheck(bob, 'a message with its buttons, reactions and picker, dark');
  const desk = bob.viewportSize();
  await bob.setViewportSize({ width: 390, height: 844 });
  await axeCheck(bob, 'a message with its buttons, reactions and picker, phone, dark');
  await bob.emulateMedia({ colorScheme: 'light' });
  await axeCheck(bob, 'a message with its buttons, reactions and picker, phone');
  await bob.setViewportSize(desk);
  await theirs.getByRole('button', { name: 'React', exact: true }).click();
  await theirs.locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await until(alice, id, { reactions: [['👍', 1, 'true']] }, 'bob took his back');

  // A reload shows the message as it stands.
  await bob.reload();
  await waitOnline(bob);
  await until(bob, id, { text: 'hello world', edited: true, reactions: [['👍', 1, 'false']] }, 'after a reload');

  // Delete.
  await own.hover();
  await own.getByRole('button', { name: 'Delete', exact: true }).click();
  await until(bob, id, { text: 'Message deleted', reactions: [], buttons: [] }, 'bob sees it deleted');
  await until(alice, id, { text: 'Message deleted', edited: false }, 'alice sees it deleted');
});
