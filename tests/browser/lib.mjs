// Shared helpers for the browser test scripts. Each script is run as
// `node tests/browser/<script>.mjs <host:port>` against a running wschat and
// exits 0 when its checks pass. Scripts wait on page state (selectors and
// predicates); the timeouts below are watchdogs against hangs, never delays.
import { chromium } from 'playwright-core';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

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
  // Cookies of this person's browser, for the page's own address.
  if (options.cookies) {
    await context.addCookies(Object.entries(options.cookies).map(([name, value]) => ({ name, value, url: base })));
  }
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

/** The text messages the page shows as confirmed by the server, in order: [from, text]. */
export function shownTexts(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('[data-testid="message"][data-kind="text"]'))
    .map((b) => [b.dataset.from, b.querySelector('[data-testid="message-text"]').textContent]));
}

/** The page's own messages still waiting for the server, in order: [text, state, what it says]. */
export function pendingTexts(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('[data-testid="pending-message"]'))
    .map((b) => [b.querySelector('[data-testid="message-text"]').textContent, b.dataset.state,
      b.querySelector('[data-testid="pending-status"]').textContent]));
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

let runnerLines = null;

/**
 * Asks the test that runs this script to do `command` and waits until it
 * has done so: in tests/browser.rs, `stop`, `start` or `restart` the
 * server (on the same address); in tests/browser_cluster.rs, the commands
 * it lists for Redis.
 */
export async function serverControl(command) {
  if (!runnerLines) runnerLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log(command);
  const { value, done } = await runnerLines.next();
  if (done || value.trim() !== 'done') throw new Error(`the server was not told to ${command}: ${done ? 'no answer' : value}`);
}

/** Waits until the page is back in its room on a connection after its `n`th (see socketSpy). */
export async function waitRejoined(page, n) {
  await page.waitForFunction((k) => window.__sockets.length > k
    && window.__sockets.at(-1).readyState === WebSocket.OPEN
    && document.querySelector('[data-testid="status"]').dataset.state === 'online', n);
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
      const more = pageErrors.length ? '\nuncaught errors in the page:\n' + pageErrors.join('\n') : '';
      console.error(`FAILED: ${name}\n${e && e.stack ? e.stack : e}${more}`);
      process.exit(1);
    },
  );
}

/**
 * A TCP relay to the server whose server-to-browser direction can be held
 * back (as on a stalled downlink) while the browser-to-server one keeps
 * flowing. Held bytes are kept in order and delivered on release, or
 * dropped with every connection by `cut` (as when the network goes).
 */
export async function holdableRelay(target) {
  const i = target.lastIndexOf(':');
  const [host, port] = [target.slice(0, i), Number(target.slice(i + 1))];
  let held = null; // [socket, bytes] in arrival order while holding
  const sockets = new Set();
  const server = net.createServer((browserSide) => {
    const serverSide = net.connect(port, host);
    for (const s of [browserSide, serverSide]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => { browserSide.destroy(); serverSide.destroy(); sockets.delete(s); });
    }
    browserSide.pipe(serverSide);
    serverSide.on('data', (d) => (held ? held.push([browserSide, d]) : browserSide.write(d)));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const destroyAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    addr: `127.0.0.1:${server.address().port}`,
    hold() { held = held || []; },
    release() {
      const queue = held || [];
      held = null;
      for (const [s, d] of queue) s.write(d);
    },
    cut() {
      held = null;
      destroyAll();
    },
    close() {
      server.close();
      destroyAll();
    },
  };
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

/**
 * Test-only instrumentation, installed before the page's own scripts (pass
 * as `initScript`): remembers every socket, the frames the page sends
 * (`__sent`: parsed text frames; `__sentBinary`: sizes of binary ones), the
 * events it receives (`__received`), the last `welcome` and how each socket
 * ended (`__closes`: {socket, code, reason}, `socket` its index in
 * `__sockets`). While
 * `window.__block` is true, new sockets fail at once, as with no network;
 * `setBlocked` sets it so that it holds across a reload of the tab too.
 */
export const socketSpy = () => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__sent = [];
  window.__sentBinary = [];
  window.__received = [];
  window.__closes = [];
  window.__welcome = null;
  try {
    window.__block = sessionStorage.getItem('test.block') === '1';
  } catch (_) {
    window.__block = false;
  }
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      // A path of the page's own server that is no WebSocket endpoint: the
      // upgrade fails at once (404), and the page's Content-Security-Policy
      // (which allows only its own origin) is respected.
      super(window.__block ? new URL('/no-such-socket', url).href : url, protocols);
      window.__sockets.push(this);
      this.addEventListener('message', (ev) => {
        if (typeof ev.data !== 'string') return;
        const msg = JSON.parse(ev.data);
        window.__received.push(msg);
        if (msg.type === 'welcome') window.__welcome = msg;
      });
      this.addEventListener('close', (ev) => {
        window.__closes.push({ socket: window.__sockets.indexOf(this), code: ev.code, reason: ev.reason });
      });
    }
    send(data) {
      if (typeof data === 'string') window.__sent.push(JSON.parse(data));
      else window.__sentBinary.push(data.size ?? data.byteLength);
      return super.send(data);
    }
  };
};

/**
 * Cuts the page (with `socketSpy`) off the network, or lets it back on:
 * its current socket drops and new ones fail, also after a reload, until
 * `setBlocked(page, false)`.
 */
export async function setBlocked(page, on) {
  await page.evaluate((block) => {
    window.__block = block;
    if (block) sessionStorage.setItem('test.block', '1');
    else sessionStorage.removeItem('test.block');
    const ws = window.__sockets.at(-1);
    if (block && ws) ws.close();
  }, on);
}

/** Frames the page has sent so far: {text, binary}. */
export function sentCounts(page) {
  return page.evaluate(() => ({ text: window.__sent.length, binary: window.__sentBinary.length }));
}

/** What has keyboard focus, in words. */
export function describeFocus(page) {
  return page.evaluate(() => {
    const a = document.activeElement;
    if (!a || a === document.body) return 'nothing (body)';
    return a.tagName.toLowerCase() + (a.dataset.testid ? `[data-testid="${a.dataset.testid}"]` : a.id ? '#' + a.id : '');
  });
}

/** Fails unless the element with keyboard focus matches `selector`. */
export async function expectFocus(page, selector) {
  const ok = await page.evaluate((sel) => document.activeElement !== null && document.activeElement.matches(sel), selector);
  assert(ok, `focus on ${selector}, not on ${await describeFocus(page)}`);
}

/**
 * Fails unless the focused element is drawn with a focus ring (an outline
 * on it, or on the composer around the text box).
 */
export async function expectFocusVisible(page) {
  const seen = await page.evaluate(() => {
    const a = document.activeElement;
    const ring = (n) => {
      const cs = getComputedStyle(n);
      return cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 1 && cs.visibility === 'visible';
    };
    return a && a !== document.body && a.getClientRects().length > 0 && (ring(a) || ring(a.closest('.composer') || a));
  });
  assert(seen, `a visible focus ring on ${await describeFocus(page)}`);
}

/** Presses Tab (or Shift+Tab) until `selector` has focus; fails if it never does. */
export async function tabTo(page, selector, { shift = false, max = 25 } = {}) {
  for (let i = 0; i <= max; i++) {
    if (await page.evaluate((sel) => document.activeElement !== null && document.activeElement.matches(sel), selector)) return;
    await page.keyboard.press(shift ? 'Shift+Tab' : 'Tab');
  }
  throw new Error(`${selector} not reached with ${max} presses of ${shift ? 'Shift+Tab' : 'Tab'}; focus is on ${await describeFocus(page)}`);
}

const AXE = path.join(REPO, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js');

/**
 * Runs axe-core on the page as it is now, against WCAG 2.1 A and AA and
 * axe's best practices. Violations of impact serious or critical fail the
 * test; the others are printed.
 */
export async function axeCheck(page, label) {
  // Evaluated through the DevTools protocol rather than added as a <script>:
  // the page's Content-Security-Policy rightly forbids inline scripts.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(fs.readFileSync(AXE, 'utf8'));
  // Colours are measured as drawn: let entrance animations and transitions end first.
  await page.waitForFunction(() => document.getAnimations()
    .every((a) => a.playState !== 'running' || a.effect.getComputedTiming().iterations === Infinity));
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    resultTypes: ['violations'],
  }));
  const where = (v) => v.nodes.map((n) => `    ${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s*\n\s*/g, ' ')}`).join('\n');
  const blocking = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations.filter((x) => !blocking.includes(x))) {
    console.log(`axe (${label}): ${v.impact} ${v.id}: ${v.help}\n${where(v)}`);
  }
  if (blocking.length) {
    throw new Error(`axe (${label}): ${blocking.length} serious or critical violation(s):\n`
      + blocking.map((v) => `  ${v.impact} ${v.id}: ${v.help}\n${where(v)}`).join('\n'));
  }
  console.log(`axe (${label}): no serious or critical violations; ${result.violations.length} other(s)`);
}
