// Whatever people type is shown as text, never interpreted as HTML.
import { run, person, say, waitMessage, waitPresence, uniqueRoom, assertEq } from './lib.mjs';

run('markup is rendered as text', async (browser) => {
  const room = uniqueRoom('<i>html</i>');
  const evil = '<img src=x onerror=alert(1)>';
  const alice = await person(browser, evil, room);
  const bob = await person(browser, 'bob', room);
  let dialogs = 0;
  bob.on('dialog', (d) => { dialogs++; d.dismiss(); });

  await say(alice, '<b>x</b>');
  await waitMessage(bob, evil, '<b>x</b>');
  await waitPresence(bob, ['bob', evil]);
  const dom = await bob.evaluate(() => ({
    text: document.querySelector('[data-testid="message-text"]').textContent,
    children: document.querySelector('[data-testid="message-text"]').children.length,
    bold: document.querySelectorAll('#messages b').length,
    imgs: document.querySelectorAll('#chat-screen img').length,
    room: document.querySelector('[data-testid="room-name"]').textContent,
    italics: document.querySelectorAll('#chat-screen i:not(.dots i)').length,
  }));
  assertEq(dom, { text: '<b>x</b>', children: 0, bold: 0, imgs: 0, room, italics: 0 }, 'markup stays text');
  assertEq(dialogs, 0, 'no script ran');
});
