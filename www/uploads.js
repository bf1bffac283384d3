// Sharing files: picking them (the attach button, drag and drop, paste),
// refusing those over the size limit before reading a byte of them, and
// sending the rest one at a time, each as a `file` announcement followed by
// one binary frame, with a progress row until the server announces it back.
// Each file has a `cid` of its own (docs/PROTOCOL.md, "Sending exactly
// once"): files picked without a connection wait for one, and a file whose
// announcement had not come back when the connection ended is sent again,
// with the same `cid`, on the next.
import { $, el, utf8Length, formatSize, formatLimit, safeFileName } from './util.js';
import { newCid } from './outbox.js';
import { perRoom, isShown, later } from './state.js';

const uploadsEl = $('uploads');
const attachButton = $('attach-button');
const fileInput = $('file-input');
const messageInput = $('message-input');
const chatScreen = $('chat-screen');
const dropOverlay = $('drop-overlay');

// Each room's own (state.js perRoom); the rows of a room not shown wait in its holder.
const up = perRoom('uploads', () => ({
  holder: el('ul'),
  queue: [], // not sent on this connection yet: {file, name, size, cid, node, bar, label}
  current: null, // the one whose bytes are leaving now
  outgoing: [], // sent on this connection, awaiting our own `file` event (oldest first)
  timer: null, // retry once the rate allows
  heldUntil: 0, // nothing is sent before this time (ms): the server could not store a file
}));

function rows() {
  return isShown() ? uploadsEl : up.holder;
}

/** Before another room is shown: the shown room's rows go to its holder. */
export function putAwayUploads() {
  up.holder.append(...uploadsEl.childNodes);
}

/** The room just shown: its rows come back. */
export function bringBackUploads() {
  uploadsEl.append(...up.holder.childNodes);
}

const WAITING = 'waiting for the connection…';

/**
 * How uploads reach the connection, given by app.js:
 *   socket()            the WebSocket when joined and open, else null
 *   sendFrame(obj, n)   sends a JSON frame counting as n against the rate; '' when sent, else why not
 *   budget()            the FrameBudget of the current socket
 *   limits()            the server's limits
 *   notice(kind, text)  shows a line above the composer; notice(null) clears a refusal
 *   changed()           what waits to be sent has changed (the notice counts it)
 */
let link = null;

export function connectUploads(l) {
  link = l;
}

/** Says why files over the size limit were not shared. */
function tooLargeText(files) {
  const limit = formatLimit(link.limits().file);
  if (files.length === 1) {
    const size = formatLimit(files[0].size);
    return '“' + safeFileName(files[0].name) + '” was not shared: it is ' + (size === limit ? 'over ' + limit : size)
      + ', and a file can be ' + limit + ' at most. Pick a smaller file.';
  }
  return files.length + ' files were not shared (' + files.map((f) => '“' + safeFileName(f.name) + '”').join(', ')
    + '): a file can be ' + limit + ' at most. Pick smaller files.';
}

/** Files waiting to be sent or confirmed. */
export function uploadsWaiting() {
  return up.queue.length + up.outgoing.length;
}

export function queueFiles(files) {
  // Only the size is looked at: the bytes of a file that is too large are never read.
  const max = link.limits().file;
  const tooLarge = files.filter((f) => f.size > max);
  link.notice(tooLarge.length ? 'error' : null, tooLarge.length ? tooLargeText(tooLarge) : '');
  for (const file of files) {
    if (file.size > max) continue;
    const upload = { file, name: safeFileName(file.name), size: file.size, cid: newCid() };
    upload.bar = el('span', { class: 'bar' });
    upload.label = el('span', { class: 'upload-status', 'data-testid': 'upload-status', text: link.socket() ? 'waiting…' : WAITING });
    upload.node = el('li', { class: 'upload', 'data-testid': 'upload', 'data-name': upload.name, 'data-state': 'queued' },
      el('span', { class: 'upload-name', text: upload.name }),
      upload.label,
      el('span', {
        class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': 'Upload progress of ' + upload.name,
      }, upload.bar));
    rows().append(upload.node);
    up.queue.push(upload);
  }
  link.changed();
  pumpUploads();
}

/** Sends the next queued file, if the connection and the rate allow. */
export function pumpUploads() {
  clearTimeout(up.timer);
  if (up.current || up.queue.length === 0) return;
  const held = up.heldUntil - Date.now();
  if (held > 0) {
    up.timer = later(pumpUploads, held);
    return;
  }
  const ws = link.socket();
  if (!ws) return;
  const upload = up.queue[0];
  let mime = upload.file.type || 'application/octet-stream';
  if (utf8Length(mime) > 255) mime = 'application/octet-stream';
  // The announcement and the bytes go together: both must fit in the rate.
  const wait = link.budget().wait(2);
  if (wait > 0) {
    up.timer = later(pumpUploads, wait);
    return;
  }
  if (link.sendFrame({ type: 'file', name: upload.name, size: upload.size, mime, cid: upload.cid }, 2) !== '') {
    up.timer = later(pumpUploads, 500);
    return;
  }
  up.queue.shift();
  up.current = upload;
  ws.send(upload.file);
  up.outgoing.push(upload);
  upload.node.dataset.state = 'sending';
  // Progress is the send buffer draining: bufferedAmount counts bytes that
  // are queued but not yet handed to the network.
  const total = Math.max(1, ws.bufferedAmount);
  const tick = () => {
    if (up.current !== upload) return;
    const same = link.socket() === ws;
    const left = same ? ws.bufferedAmount : total;
    const pct = upload.size === 0 ? 100 : Math.max(0, Math.min(100, Math.round(100 * (1 - left / total))));
    setProgress(upload, pct);
    if (left === 0 && same) {
      upload.node.dataset.state = 'delivering';
      upload.label.textContent = 'delivering…';
      up.current = null;
      pumpUploads();
      return;
    }
    upload.timer = later(tick, 50);
  };
  tick();
}

function setProgress(upload, pct) {
  upload.bar.style.width = pct + '%';
  upload.node.querySelector('.progress').setAttribute('aria-valuenow', String(pct));
  upload.node.dataset.progress = String(pct);
  upload.label.textContent = pct + '% of ' + formatSize(upload.size);
}

function failUpload(upload, why) {
  clearTimeout(upload.timer);
  upload.node.dataset.state = 'failed';
  upload.label.textContent = why;
  const node = upload.node;
  setTimeout(() => node.remove(), 6000);
}

/**
 * Our own `file` event `msg` came back: the server has the file. Returns
 * the File we sent (to show it from here) and takes its row away, or null
 * when the file was not sent from this page. The event names the file by
 * its `cid`; a server that does not echo `cid` by its name and size.
 */
export function ownFileAnnounced(msg) {
  const same = typeof msg.cid === 'string'
    ? (u) => u.cid === msg.cid
    : (u) => !msg.replay && u.name === msg.name && u.size === msg.size;
  let upload;
  let i = up.outgoing.findIndex(same);
  if (i >= 0) {
    [upload] = up.outgoing.splice(i, 1);
  } else {
    // Stored before the connection ended, and only now confirmed.
    i = up.queue.findIndex(same);
    if (i < 0) return null;
    [upload] = up.queue.splice(i, 1);
  }
  clearTimeout(upload.timer);
  if (up.current === upload) {
    up.current = null;
    pumpUploads();
  }
  setProgress(upload, 100);
  upload.node.dataset.state = 'done';
  upload.label.textContent = 'sent';
  upload.node.remove();
  return upload.file;
}

/**
 * The server refused a file it has not announced: the first sent one that
 * `refusedIf` says it was, else the oldest.
 */
export function failCurrentUpload(why, refusedIf = () => false) {
  const upload = up.outgoing.find(refusedIf) || up.outgoing[0];
  if (!upload) return;
  up.outgoing.splice(up.outgoing.indexOf(upload), 1);
  if (up.current === upload) up.current = null;
  failUpload(upload, 'not sent: ' + why);
  pumpUploads();
}

/**
 * The connection is gone: what was sent on it and not confirmed goes again
 * on the next one, before what had not been sent yet.
 */
export function requeueUploads() {
  const again = up.outgoing.concat(up.queue.filter((u) => !up.outgoing.includes(u)));
  up.outgoing = [];
  up.current = null;
  clearTimeout(up.timer);
  up.queue = again;
  for (const upload of again) unsend(upload, WAITING);
}

/** Shows `upload` as not sent, waiting for `why`. */
function unsend(upload, why) {
  clearTimeout(upload.timer);
  upload.node.dataset.state = 'queued';
  upload.bar.style.width = '0%';
  upload.node.querySelector('.progress').removeAttribute('aria-valuenow');
  delete upload.node.dataset.progress;
  upload.label.textContent = why;
}

/** Whether a file with `cid` was sent on this connection and awaits its announcement. */
export function uploadAwaits(cid) {
  return up.outgoing.some((u) => u.cid === cid);
}

/**
 * The server could not store the file with `cid` (error `unavailable`): it
 * goes again, with the same `cid`, first in line, after `delay` ms.
 */
export function retryUpload(cid, delay) {
  const upload = up.outgoing.find((u) => u.cid === cid);
  if (!upload) return;
  up.outgoing.splice(up.outgoing.indexOf(upload), 1);
  if (up.current === upload) up.current = null;
  unsend(upload, 'the server could not store it; trying again shortly');
  up.queue.unshift(upload);
  up.heldUntil = Date.now() + delay;
  pumpUploads();
}

function forget() {
  for (const upload of up.outgoing.concat(up.queue)) clearTimeout(upload.timer);
  up.outgoing = [];
  up.queue = [];
  up.current = null;
  up.heldUntil = 0;
  clearTimeout(up.timer);
}

/** A new conversation: no uploads, no rows. */
export function resetUploads() {
  forget();
  rows().replaceChildren();
}

// -------------------------------------------------------- picking files

attachButton.addEventListener('click', () => fileInput.click());

fileInput.addEventListener('change', () => {
  if (fileInput.files && fileInput.files.length) queueFiles(Array.from(fileInput.files));
  fileInput.value = '';
});

let dragDepth = 0;
const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
function hideDropOverlay() {
  dragDepth = 0;
  dropOverlay.hidden = true;
}
window.addEventListener('dragenter', (e) => {
  if (chatScreen.hidden || !hasFiles(e)) return;
  e.preventDefault();
  dragDepth++;
  dropOverlay.hidden = false;
});
window.addEventListener('dragover', (e) => {
  if (chatScreen.hidden || !hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
});
window.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) dropOverlay.hidden = true;
});
window.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  hideDropOverlay();
  if (chatScreen.hidden) return;
  const files = Array.from(e.dataTransfer.files || []);
  if (files.length) queueFiles(files);
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !dropOverlay.hidden) {
    e.preventDefault();
    hideDropOverlay();
  }
});

messageInput.addEventListener('paste', (e) => {
  const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
  if (files.length) {
    e.preventDefault();
    queueFiles(files);
  }
});
