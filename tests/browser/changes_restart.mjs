// Edits, deletions and reactions outlive a server restart on the same
// database: the pages that resume show them as they stood, and so do a page
// reloaded after the restart and a person who joins only then (both given
// them by the history the restarted server reads back).
import {
  run, person, say, waitMessage, waitOnline, uniqueRoom, socketSpy, serverControl, waitRejoined, shownTexts, assertEq,
} from './lib.mjs';

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
  };
}

/** Waits until the page shows message `id` exactly as `expected`. */
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
      };
      return JSON.stringify(shown) === JSON.stringify(expected);
    }, [id, expected], { timeout: 5000 });
  } catch (e) {
    throw new Error(`${what}: ${JSON.stringify(await page.evaluate(view, id))} (${e.message.split('\n')[0]})`);
  }
}

run('changes survive a server restart', async (browser) => {
  const room = uniqueRoom('changes-restart');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room, { initScript: socketSpy });
  const ids = [];
  for (const text of ['frist', 'oops, wrong room', 'lunch at noon?']) {
    await say(alice, text);
    await waitMessage(bob, 'alice', text);
    ids.push(Number(await alice.getAttribute(bubble('alice', text), 'data-id')));
  }
  const [edited, deleted, reacted] = ids;
  const mine = (id) => alice.locator(`[data-testid="message"][data-id="${id}"]`);

  // Alice edits the first and deletes the second.
  await mine(edited).hover();
  await mine(edited).getByRole('button', { name: 'Edit', exact: true }).click();
  const box = mine(edited).getByRole('textbox', { name: 'Edit message' });
  await box.fill('first');
  await box.press('Enter');
  await mine(deleted).hover();
  await mine(deleted).getByRole('button', { name: 'Delete', exact: true }).click();

  // Bob reacts 👍 to the third; alice adds her 👍 (by its chip) and a 🎉 (by
  // the picker), and takes both back.
  const theirs = bob.locator(`[data-testid="message"][data-id="${reacted}"]`);
  await theirs.hover();
  await theirs.getByRole('button', { name: 'React', exact: true }).click();
  await theirs.getByRole('button', { name: 'React with 👍' }).click();
  await until(alice, reacted, { text: 'lunch at noon?', edited: false, reactions: [['👍', 1, 'false']] }, 'alice sees bob\'s 👍');
  await mine(reacted).locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await mine(reacted).hover();
  await mine(reacted).getByRole('button', { name: 'React', exact: true }).click();
  await mine(reacted).getByRole('button', { name: 'React with 🎉' }).click();
  await until(bob, reacted, { text: 'lunch at noon?', edited: false, reactions: [['👍', 2, 'true'], ['🎉', 1, 'false']] },
    'bob sees alice\'s 👍 and 🎉');
  await until(alice, reacted, { text: 'lunch at noon?', edited: false, reactions: [['👍', 2, 'true'], ['🎉', 1, 'true']] },
    'alice sees her 👍 and 🎉');
  await mine(reacted).locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await until(alice, reacted, { text: 'lunch at noon?', edited: false, reactions: [['👍', 1, 'false'], ['🎉', 1, 'true']] },
    'alice took her 👍 back');
  await mine(reacted).locator('[data-testid="reaction"][data-emoji="🎉"]').click();

  // What every page must show of the three, for someone who is not bob
  // (for bob, his 👍 is pressed).
  const expected = (pressed) => [
    [edited, { text: 'first', edited: true, reactions: [] }, 'the edit'],
    [deleted, { text: 'Message deleted', edited: false, reactions: [] }, 'the deletion'],
    [reacted, { text: 'lunch at noon?', edited: false, reactions: [['👍', 1, pressed]] }, 'bob\'s 👍 alone'],
  ];
  const check = async (who, page, pressed, when) => {
    for (const [id, want, what] of expected(pressed)) await until(page, id, want, `${who} ${when}, ${what}`);
    assertEq(await shownTexts(page), [['alice', 'first'], ['alice', 'Message deleted'], ['alice', 'lunch at noon?']],
      `${who} ${when}: the three, once each, in order`);
  };
  await check('alice', alice, 'false', 'before the restart');
  await check('bob', bob, 'true', 'before the restart');

  const sockets = { alice: await alice.evaluate(() => window.__sockets.length), bob: await bob.evaluate(() => window.__sockets.length) };
  await serverControl('restart');
  await waitRejoined(alice, sockets.alice);
  await waitRejoined(bob, sockets.bob);
  await check('alice', alice, 'false', 'after rejoining');
  await check('bob', bob, 'true', 'after rejoining');

  // From the history the restarted server reads back: a reload, and a newcomer.
  await bob.reload();
  await waitOnline(bob);
  await check('bob', bob, 'true', 'after a reload');
  const carol = await person(browser, 'carol', room);
  await check('carol', carol, 'false', 'joining after the restart');
});
