// The tutorial's own page (tests/browser/tutorial/, only its port changed) works
// against raw mode on /ws: text is relayed as typed and never echoed, a file
// arrives as a download link with identical bytes, and Close closes cleanly.
//
// Run as `node tutorial_page.mjs localhost:PORT TEXT FILE_NAME FILE_HEX` by
// tests/browser.rs, which also watches the room with a v1 client: once both
// pages are members it writes `ready` to this script's stdin.
import readline from 'node:readline';
import { run, openPage, assert, assertEq, WATCHDOG_MS } from './lib.mjs';

const [text, fileName, fileHex] = process.argv.slice(3);
if (fileHex === undefined) {
  console.error('usage: node tutorial_page.mjs localhost:PORT TEXT FILE_NAME FILE_HEX');
  process.exit(2);
}
const fileBytes = Buffer.from(fileHex, 'hex');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Waits for the test to say that both pages are in the room. */
async function ready() {
  let timer;
  const watchdog = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('no "ready" on stdin within the watchdog')), WATCHDOG_MS);
  });
  try {
    const line = await Promise.race([lines.next(), watchdog]);
    assertEq(line.value, 'ready', 'line on stdin');
  } finally {
    clearTimeout(timer);
  }
}

/** Records every WebSocket the page opens and the data frames on it. */
function recordSockets(page) {
  const seen = { urls: [], received: [], sent: [] };
  page.on('websocket', (ws) => {
    seen.urls.push(ws.url());
    ws.on('framereceived', (f) => seen.received.push(f.payload));
    ws.on('framesent', (f) => seen.sent.push(f.payload));
  });
  return seen;
}

/** The log entries of one kind (status, sent, received, file), as text. */
function entries(page, kind) {
  return page.$$eval(`#log .entry.${kind}`, (els) => els.map((e) => e.textContent));
}

/** Waits for a log entry of `kind` whose text is `text` (or starts with it). */
async function waitEntry(page, kind, text, prefix = false) {
  await page.waitForFunction(
    ([k, t, p]) => Array.from(document.querySelectorAll(`#log .entry.${k}`))
      .some((e) => (p ? e.textContent.startsWith(t) : e.textContent === t)),
    [kind, text, prefix],
  );
}

async function connect(page) {
  await page.click('#connect');
  await waitEntry(page, 'status', 'Connected');
}

/** Clicks Close and returns the close code and wasClean the page logged. */
async function close(page) {
  await page.click('#close');
  await waitEntry(page, 'status', 'Disconnected:', true);
  const line = (await entries(page, 'status')).find((t) => t.startsWith('Disconnected:'));
  const m = /^Disconnected: code=(\d+) clean=(true|false)$/.exec(line);
  assert(m, `close logged as ${JSON.stringify(line)}`);
  return { code: Number(m[1]), clean: m[2] === 'true' };
}

run('tutorial page works unchanged', async (browser) => {
  const a = await openPage(browser, { label: 'A' });
  const b = await openPage(browser, { label: 'B' });
  const socketsA = recordSockets(a);
  const socketsB = recordSockets(b);
  const wsUrl = `ws://${process.argv[2]}/ws`;

  await connect(a);
  await connect(b);
  await ready();

  // A sends a message: B shows it exactly as typed.
  await a.fill('#message', text);
  await a.click('#send');
  await waitEntry(b, 'received', text);
  assertEq(await entries(b, 'received'), [text], "B's log holds A's message once, as typed");

  // B sends a file: A gets a link with the name and the very bytes.
  await b.setInputFiles('#file', { name: fileName, mimeType: 'application/octet-stream', buffer: fileBytes });
  await b.click('#sendFile');
  const link = await a.waitForSelector('#log .entry.file a');
  const got = await a.evaluate(async (el) => ({
    download: el.getAttribute('download'),
    href: el.href,
    bytes: Array.from(new Uint8Array(await (await fetch(el.href)).arrayBuffer())),
  }), link);
  assertEq(got.download, fileName, 'link downloads under the file name');
  assert(got.href.startsWith('blob:'), `link is a Blob URL: ${got.href}`);
  assertEq(got.bytes, Array.from(fileBytes), 'blob bytes identical to the file sent');
  // The server handled A's message before B's file (B sent the file after
  // receiving the message), so an echo would have reached A by now.
  assertEq(await entries(a, 'received'), [], "A's own message is not echoed back to A");

  const [download] = await Promise.all([a.waitForEvent('download'), link.click()]);
  assertEq(download.suggestedFilename(), fileName, 'downloaded file name');
  const { readFileSync } = await import('node:fs');
  assert(readFileSync(await download.path()).equals(fileBytes), 'downloaded bytes identical to the file sent');

  // Close closes cleanly.
  const closedA = await close(a);
  const closedB = await close(b);
  for (const [who, c] of [['A', closedA], ['B', closedB]]) {
    assert(c.code === 1000 || c.code === 1005, `${who} closed with code ${c.code}`);
    assert(c.clean, `${who}'s close was clean`);
  }

  // On the wire (after the close, so nothing can still be in flight): each
  // page opened one socket to the tutorial's URL, and received exactly the
  // other's frame, unchanged.
  const header = Buffer.alloc(2);
  const nameBytes = Buffer.from(fileName, 'utf8');
  header.writeUInt16LE(nameBytes.length);
  const frame = Buffer.concat([header, nameBytes, fileBytes]);
  assertEq(socketsA.urls, [wsUrl], 'A opened one WebSocket to the page URL');
  assertEq(socketsB.urls, [wsUrl], 'B opened one WebSocket to the page URL');
  assertEq(socketsA.sent, [text], 'A sent its message as one text frame');
  assertEq(socketsB.received, [text], 'B received exactly the text frame, nothing else');
  assertEq(socketsB.sent.length, 1, 'B sent one frame');
  assert(Buffer.isBuffer(socketsB.sent[0]) && socketsB.sent[0].equals(frame), "B's file frame is the tutorial format");
  assertEq(socketsA.received.length, 1, 'A received exactly one frame');
  assert(Buffer.isBuffer(socketsA.received[0]) && socketsA.received[0].equals(frame), 'A received the file frame unchanged');
});
