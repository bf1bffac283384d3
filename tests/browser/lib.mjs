// Shared helpers for the browser test scripts. Each script is run as
// `node tests/browser/<script>.mjs <host:port>` against a running wschat and
// exits 0 when its checks pass. Scripts wait on page state (selectors and
// predicates); the timeouts below are watchdogs against hangs, never delays.
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';
export const WATCHDOG_MS = 20000;
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const addr = process.argv[2];
if (!addr) {
  console.error('usage: node <script>.mjs <host:port>');
  process.exit(2);
}
export const base = `http://${addr}/`;

/** A room name no other run shares. */
export function uniqueRoom(prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}

/**
 * Launches headless Chromium. Playwright always gives the browser a fresh
 * temporary `--user-data-dir` of its own (and deletes it on close); passing
 * one in `args` is refused by Playwright, so it is not listed here.
 */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: WATCHDOG_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const pageErrors = [];

/** A fresh context (own storage, like a separate person) with one page on the chat. */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({
    viewport: options.viewport || { width: 1100, height: 720 },
    deviceScaleFactor: options.deviceScaleFactor || 1,
    acceptDownloads: true,
    colorScheme: options.colorScheme || 'light',
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(WATCHDOG_MS);
  const page = await context.newPage();
  const label = options.label || 'page';
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.stack || e}`));
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[${label} console] ${m.text()}`);
    // Whatever the server's Content-Security-Policy blocks fails the test.
    if (/Content Security Policy/.test(m.text())) pageErrors.push(`${label}: ${m.text()}`);
  });
  if (options.initScript) await page.addInitScript(options.initScript);
  await page.goto(base);
  return page;
}

/** Fills the join form and waits until the server has welcomed us. */
export async function join(page, name, room) {
  await page.waitForSelector('[data-testid="join-form"]', { state: 'visible' });
  await page.fill('[data-testid="join-name"]', name);
  await page.fill('[data-testid="join-room"]', room);
  await page.click('[data-testid="join-button"]');
  await waitOnline(page);
}

export async function waitOnline(page) {
  await page.waitForSelector('[data-testid="status"][data-state="online"]');
}

/** Opens a page for a new person and joins `room` as `name`. */
export async function person(browser, name, room, options = {}) {
  const page = await openPage(browser, { label: name, ...options });
  await join(page, name, room);
  return page;
}

/** Types `text` in the composer and presses Enter. */
export async function say(page, text) {
  await page.fill('[data-testid="message-input"]', text);
  await page.press('[data-testid="message-input"]', 'Enter');
}

/** Waits for a message bubble from `from` whose text is exactly `text`. */
export async function waitMessage(page, from, text) {
  await page.waitForFunction(
    ([f, t]) => Array.from(document.querySelectorAll('[data-testid="message"][data-kind="text"]'))
      .some((b) => b.dataset.from === f && b.querySelector('[data-testid="message-text"]').textContent === t),
    [from, text],
  );
}

/** Waits until the presence list holds exactly `names` (any order). */
export async function waitPresence(page, names) {
  await page.waitForFunction(
    (want) => {
      const got = Array.from(document.querySelectorAll('[data-testid="presence-user"]')).map((li) => li.dataset.name).sort();
      return JSON.stringify(got) === JSON.stringify(want.slice().sort());
    },
    names,
  );
}

export function assert(cond, message) {
  if (!cond) throw new Error('assertion failed: ' + message);
}

export function assertEq(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`assertion failed: ${message}\n  expected: ${e}\n  actual:   ${a}`);
}

/**
 * Runs a test body with a browser, closes it, and exits 0 on success or 1 with
 * the error. Uncaught errors inside any page also fail the test.
 */
export function run(name, body) {
  (async () => {
    const browser = await launch();
    try {
      await body(browser);
      if (pageErrors.length) throw new Error('uncaught errors in the page:\n' + pageErrors.join('\n'));
    } finally {
      await browser.close();
    }
  })().then(
    () => {
      console.log(`ok: ${name}`);
      process.exit(0);
    },
    (e) => {
      console.error(`FAILED: ${name}\n${e && e.stack ? e.stack : e}`);
      process.exit(1);
    },
  );
}

/** A valid RGBA PNG of `w`×`h` pixels drawn by `pixel(x, y) -> [r, g, b, a]`. */
export async function makePng(w, h, pixel) {
  const zlib = await import('node:zlib');
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc((w * 4 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const [r, g, b, a] = pixel(x, y);
      const o = y * (w * 4 + 1) + 1 + x * 4;
      raw[o] = r; raw[o + 1] = g; raw[o + 2] = b; raw[o + 3] = a;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
