// A large file's upload indicator shows its progress while it travels and stays
// until the server announces the file back; the other person gets every byte.
import { createHash } from 'node:crypto';
import { run, openPage, join, addr, uniqueRoom, person, holdableRelay, assert, assertEq } from './lib.mjs';

const SIZE = 6 << 20; // well under the 16 MiB default --max-file-size
const NAME = 'big.bin';
const UPLOAD = `[data-testid="upload"][data-name="${NAME}"]`;
const OWN_FILE = '[data-testid="message"][data-from="alice"][data-kind="file"]';

run('upload shows progress until confirmed', async (browser) => {
  const room = uniqueRoom('upload');
  const relay = await holdableRelay(addr);
  try {
    // Alice reaches the server through the relay; bob directly.
    const alice = await openPage(browser, { label: 'alice' });
    await alice.goto(`http://${relay.addr}/`);
    await join(alice, 'alice', room);
    const bob = await person(browser, 'bob', room);

    // Records, at the moment the indicator leaves the page, whether the
    // server's announcement of alice's file had arrived by then.
    await alice.evaluate(([upload, own]) => {
      window.uploadRemoved = [];
      new MutationObserver((records) => {
        for (const r of records) {
          for (const n of r.removedNodes) {
            if (n.matches && n.matches(upload)) {
              const bubble = document.querySelector(own);
              window.uploadRemoved.push({ announced: bubble !== null, state: bubble && bubble.dataset.state });
            }
          }
        }
      }).observe(document.querySelector('[data-testid="uploads"]'), { childList: true });
    }, [UPLOAD, OWN_FILE]);

    const body = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4) body.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
    const sha = createHash('sha256').update(body).digest('hex');

    // Nothing from the server reaches alice until released: her upload goes
    // out, but its announcement cannot come back yet.
    relay.hold();
    await alice.setInputFiles('[data-testid="file-input"]', { name: NAME, mimeType: 'application/octet-stream', buffer: body });

    // The indicator is up while the file travels: a progress bar and a status line.
    await alice.waitForSelector(`${UPLOAD} [role="progressbar"]`, { state: 'visible' });
    const sending = await alice.$eval(UPLOAD, (node) => ({
      state: node.dataset.state,
      value: Number(node.querySelector('[role="progressbar"]').getAttribute('aria-valuenow')),
      label: node.querySelector('[data-testid="upload-status"]').textContent,
    }));
    assert(['sending', 'delivering'].includes(sending.state), `upload in flight: ${JSON.stringify(sending)}`);
    assert(sending.value >= 0 && sending.value <= 100, `progress is a percentage: ${JSON.stringify(sending)}`);
    assert(/^\d+% of 6\.0 MB$|^delivering…$/.test(sending.label), `status line tells how far it got: ${JSON.stringify(sending)}`);

    // Every byte has left the page and the server has relayed the file to
    // bob, yet without the announcement alice's indicator stays, at 100%.
    await alice.waitForSelector(`${UPLOAD}[data-state="delivering"]`, { state: 'visible' });
    await bob.waitForSelector(`${OWN_FILE}[data-state="ready"]`);
    const waiting = await alice.$eval(UPLOAD, (node) => ({
      value: node.dataset.progress,
      label: node.querySelector('[data-testid="upload-status"]').textContent,
    }));
    assertEq(waiting, { value: '100', label: 'delivering…' }, 'indicator waits for the confirmation');
    assertEq(await alice.locator(OWN_FILE).count(), 0, 'no announcement has reached alice yet');

    // It goes away once the server's announcement comes back.
    relay.release();
    await alice.waitForSelector(UPLOAD, { state: 'detached' });
    const removed = await alice.evaluate(() => window.uploadRemoved);
    assertEq(removed, [{ announced: true, state: 'ready' }], 'indicator removed as the announcement came in');

    // Bob has the whole file.
    const got = await bob.$eval(`${OWN_FILE} a[data-testid="file-link"]`, async (a) => {
      const bytes = await (await fetch(a.href)).arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      return { size: bytes.byteLength, sha: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''), name: a.getAttribute('download') };
    });
    assertEq(got, { size: SIZE, sha, name: NAME }, 'bob received the file whole');
  } finally {
    relay.close();
  }
});
