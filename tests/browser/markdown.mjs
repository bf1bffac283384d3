// A little Markdown shows in the bubbles as elements the page built itself:
// bold, italic, inline code, a fenced block, links (only http and https,
// opened in a new tab without the opener or referrer) and line breaks;
// markup and script-looking links stay text. The raw text is what travels.
import {
  run, person, say, uniqueRoom, socketSpy, assert, assertEq,
} from './lib.mjs';

const RICH = [
  'a **bold** move, *soft* and _also soft_, run `cargo test` first',
  'second line with https://example.com/docs?x=1. and [the guide](https://example.com/guide)',
  '```',
  'fn main() {',
  '    println!("<b>hi</b>");',
  '}',
  '```',
  'snake_case_name and 2*3*4 stay as typed',
].join('\n');

const EVIL = '<img src=x onerror=alert(1)> [x](javascript:alert(1)) [y](data:text/html,hi) **<script>alert(2)</script>**';

/** Waits for the newest bubble from `from` and describes what it is made of. */
async function newest(page, from, count) {
  await page.waitForFunction(([f, n]) => document.querySelectorAll(`[data-testid="message"][data-from="${f}"]`).length >= n, [from, count]);
  return page.evaluate((f) => {
    const bubbles = document.querySelectorAll(`[data-testid="message"][data-from="${f}"]`);
    const body = bubbles[bubbles.length - 1].querySelector('[data-testid="message-text"]');
    const all = (sel) => Array.from(body.querySelectorAll(sel));
    return {
      strong: all('strong').map((n) => n.textContent),
      em: all('em').map((n) => n.textContent),
      code: all(':not(pre) > code').map((n) => n.textContent),
      pre: all('pre > code').map((n) => n.textContent),
      links: all('a').map((a) => ({
        text: a.textContent, href: a.getAttribute('href'), target: a.target, rel: a.rel,
      })),
      tags: Array.from(new Set(all('*').map((n) => n.tagName.toLowerCase()))).sort(),
      text: body.textContent,
    };
  }, from);
}

run('markdown is rendered from elements the page builds, never from HTML', async (browser) => {
  const room = uniqueRoom('markdown');
  const alice = await person(browser, 'alice', room, { initScript: socketSpy });
  const bob = await person(browser, 'bob', room);
  let dialogs = 0;
  bob.on('dialog', (d) => { dialogs++; d.dismiss(); });
  alice.on('dialog', (d) => { dialogs++; d.dismiss(); });

  await say(alice, RICH);
  const rich = await newest(bob, 'alice', 1);
  assertEq(rich.strong, ['bold'], 'bold');
  assertEq(rich.em, ['soft', 'also soft'], 'italic with * and _ (snake_case and 2*3*4 untouched)');
  assertEq(rich.code, ['cargo test'], 'inline code');
  assertEq(rich.pre, ['fn main() {\n    println!("<b>hi</b>");\n}'], 'the fenced block, its markup as text');
  assertEq(rich.links, [
    { text: 'https://example.com/docs?x=1', href: 'https://example.com/docs?x=1', target: '_blank', rel: 'noopener noreferrer' },
    { text: 'the guide', href: 'https://example.com/guide', target: '_blank', rel: 'noopener noreferrer' },
  ], 'a bare URL (its full stop left out) and a [text](url) link');
  assertEq(rich.tags, ['a', 'code', 'em', 'pre', 'strong'], 'nothing but the elements Markdown asks for');
  assert(rich.text.includes('snake_case_name and 2*3*4 stay as typed'), 'words with _ and * inside stay as typed: ' + rich.text);
  // Line breaks are kept: the first two lines are two lines, not one.
  const breaks = await bob.evaluate(() => {
    const body = Array.from(document.querySelectorAll('[data-testid="message-text"]')).at(-1);
    const range = document.createRange();
    const first = body.querySelector('strong');
    const second = body.querySelector('a');
    range.selectNode(first);
    const y1 = range.getBoundingClientRect().top;
    range.selectNode(second);
    return range.getBoundingClientRect().top > y1 + 5;
  });
  assert(breaks, 'the second line starts below the first');
  // What went over the socket is the raw text, unchanged.
  const sent = await alice.evaluate(() => window.__sent.filter((f) => f.type === 'message').map((f) => f.text));
  assertEq(sent, [RICH], 'the raw text is what is sent');
  // Our own bubble is drawn the same way.
  const mine = await newest(alice, 'alice', 1);
  assertEq([mine.strong, mine.pre.length, mine.links.length], [['bold'], 1, 2], 'our own bubble shows Markdown too');

  await say(alice, EVIL);
  const evil = await newest(bob, 'alice', 2);
  assertEq(evil.links, [], 'javascript: and data: links are not links');
  assertEq(evil.tags, ['strong'], 'no element but the bold');
  assertEq(evil.strong, ['<script>alert(2)</script>'], 'the bold holds the script as text');
  assertEq(evil.text, '<img src=x onerror=alert(1)> [x](javascript:alert(1)) [y](data:text/html,hi) <script>alert(2)</script>', 'markup shown as typed');
  const page = await bob.evaluate(() => ({
    imgs: document.querySelectorAll('#messages img').length,
    scripts: document.querySelectorAll('#messages script').length,
  }));
  assertEq(page, { imgs: 0, scripts: 0 }, 'no image or script element in the list');
  assertEq(dialogs, 0, 'no script ran');
});
