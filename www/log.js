// The message list: bubbles grouped by sender, notes, day dividers, file
// cards and inline images, and keeping the newest message in view.
import {
  $, el, svgIcon, ICON_FILE, ICON_DOWNLOAD, avatar, formatSize, formatTime, dayKey, dayLabel, appendLinkified,
} from './util.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000; // one sender's bubbles this close together share a group
const BOTTOM_SLACK_PX = 80; // this close to the end counts as "at the newest message"

const messagesEl = $('messages');
const emptyState = $('empty-state');
const newMessagesBtn = $('new-messages');

const log = {
  self: '', // our own name: our bubbles are set apart
  lastGroup: null, // {from, ts, node} of the newest bubble group
  lastDay: null,
  blobUrls: [],
  // The user is at the newest message. Only scrolling changes this; while it
  // holds, whatever changes the list's size (new messages, an image or file
  // finishing loading, the composer growing) keeps the newest one in view.
  stuck: true,
};

export function setSelf(name) {
  log.self = name;
}

export function resetLog() {
  for (const url of log.blobUrls) URL.revokeObjectURL(url);
  log.blobUrls = [];
  log.lastGroup = null;
  log.lastDay = null;
  log.stuck = true;
  sizes.disconnect();
  sizes.observe(messagesEl);
  messagesEl.replaceChildren(emptyState);
  emptyState.hidden = false;
  newMessagesBtn.hidden = true;
}

// ---------------------------------------------------------------- scrolling

function atBottom() {
  return messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < BOTTOM_SLACK_PX;
}

export function scrollToBottom() {
  messagesEl.scrollTop = messagesEl.scrollHeight;
  log.stuck = true;
  newMessagesBtn.hidden = true;
}

const sizes = new ResizeObserver(() => {
  if (log.stuck) scrollToBottom();
});
sizes.observe(messagesEl);

messagesEl.addEventListener('scroll', () => {
  log.stuck = atBottom();
  if (log.stuck) newMessagesBtn.hidden = true;
});

newMessagesBtn.addEventListener('click', () => {
  const hadFocus = document.activeElement === newMessagesBtn;
  scrollToBottom();
  // The button goes away; keyboard focus goes to the list it scrolled.
  if (hadFocus) messagesEl.focus();
});

/** Adds `node` at the end of the list; `showNow` scrolls to it whatever the user was reading. */
function append(node, { showNow = false, announce = true } = {}) {
  emptyState.hidden = true;
  messagesEl.append(node);
  sizes.observe(node);
  if (log.stuck || showNow) scrollToBottom();
  else if (announce) newMessagesBtn.hidden = false;
}

// ------------------------------------------------------------------ content

function ensureDay(ts) {
  if (!Number.isFinite(ts)) return;
  const key = dayKey(ts);
  if (key === log.lastDay) return;
  log.lastDay = key;
  log.lastGroup = null;
  const label = dayLabel(ts);
  append(el('div', { class: 'day-divider', role: 'separator', 'aria-label': label }, el('span', { text: label })), { announce: false });
}

/**
 * Adds a bubble holding `content` from `from` for the event `msg` (a message
 * or file event) and returns it.
 */
export function addBubble(msg, from, content, kind) {
  const ts = Number.isFinite(msg.ts) ? msg.ts : Date.now();
  ensureDay(ts);
  const mine = from === log.self;
  const g = log.lastGroup;
  let group;
  let body;
  if (g && g.from === from && ts - g.ts < GROUP_WINDOW_MS && g.node.isConnected && g.node === messagesEl.lastElementChild) {
    group = g.node;
    g.ts = ts;
    body = group.querySelector('.group-body');
  } else {
    group = el('div', { class: 'group' + (mine ? ' mine' : ''), 'data-testid': 'message-group', 'data-from': from });
    if (!mine) group.append(avatar(from));
    body = el('div', { class: 'group-body' });
    const head = el('div', { class: 'group-head' });
    head.append(el('span', { class: 'sender', 'data-testid': 'message-from', text: mine ? 'You' : from }));
    body.append(head);
    group.append(body);
    log.lastGroup = { from, ts, node: group };
  }
  const bubble = el('div', {
    class: 'bubble bubble-' + kind,
    'data-testid': 'message',
    'data-id': Number.isInteger(msg.id) ? msg.id : undefined,
    'data-from': from,
    'data-kind': kind,
    'data-mine': mine ? 'true' : 'false',
    'data-replay': msg.replay ? 'true' : undefined,
  });
  bubble.append(content);
  bubble.append(el('time', {
    class: 'time',
    'data-testid': 'message-time',
    datetime: new Date(ts).toISOString(),
    title: new Date(ts).toLocaleString(),
    text: formatTime(ts),
  }));
  body.append(bubble);
  // What we send ourselves is shown at once; others' messages wait for the
  // user behind the "new messages" button if they were reading further up.
  const showNow = mine && !msg.replay;
  if (group.isConnected) {
    if (log.stuck || showNow) scrollToBottom();
    else newMessagesBtn.hidden = false;
  } else {
    append(group, { showNow });
  }
  return bubble;
}

export function addTextBubble(msg, from, text) {
  const body = el('div', { class: 'bubble-text', 'data-testid': 'message-text' });
  appendLinkified(body, text);
  return addBubble(msg, from, body, 'text');
}

/** A line in the list about the room itself (joins, leaves, reconnects). */
export function addNote(text, kind, ts) {
  if (Number.isFinite(ts)) ensureDay(ts);
  const note = el('div', { class: 'note note-' + (kind || 'info'), 'data-testid': 'note', 'data-kind': kind || 'info' });
  note.append(el('span', { text }));
  if (Number.isFinite(ts)) note.append(el('time', { class: 'time', datetime: new Date(ts).toISOString(), text: formatTime(ts) }));
  log.lastGroup = null;
  append(note, { announce: false });
}

// -------------------------------------------------------------------- files

function fileCard(record, statusText, href) {
  const card = el('div', { class: 'file-card', 'data-testid': 'file-card' });
  card.append(el('span', { class: 'file-icon' }, svgIcon(ICON_FILE)));
  const meta = el('span', { class: 'file-meta' });
  meta.append(el('span', { class: 'file-name', 'data-testid': 'file-name', text: record.name }));
  meta.append(el('span', { class: 'file-size', text: statusText ? formatSize(record.size) + ' · ' + statusText : formatSize(record.size) }));
  card.append(meta);
  if (href) {
    const a = el('a', {
      class: 'file-download',
      href,
      download: record.name,
      'data-testid': 'file-link',
      title: 'Download ' + record.name,
    }, svgIcon(ICON_DOWNLOAD));
    a.append(el('span', { class: 'sr-only', text: 'Download ' + record.name }));
    card.append(a);
  }
  return card;
}

/**
 * Adds a file bubble for the `file` event `msg` and returns its record,
 * which the render functions below fill in as the bytes arrive (or not).
 */
export function addFileBubble(msg, from, name, size, mime) {
  const holder = el('div', { class: 'file-holder' });
  const bubble = addBubble(msg, from, holder, 'file');
  return { msg, name, size, mime, holder, bubble };
}

export function renderFilePending(record) {
  record.bubble.dataset.state = 'pending';
  record.holder.replaceChildren(fileCard(record, 'receiving…'));
}

export function renderFileUnavailable(record, why) {
  record.bubble.dataset.state = 'unavailable';
  record.holder.replaceChildren(fileCard(record, why));
}

export function renderFileReady(record, blob) {
  record.bubble.dataset.state = 'ready';
  const isImage = /^image\//i.test(record.mime);
  // Images keep their type so <img> can show them; anything else is typed
  // as opaque bytes so that following its link can only ever download it.
  const typed = new Blob([blob], { type: isImage ? record.mime : 'application/octet-stream' });
  const url = URL.createObjectURL(typed);
  log.blobUrls.push(url);
  if (isImage) {
    // The image's height is known only once it has loaded; the size
    // observer then keeps the newest message in view.
    const img = el('img', { class: 'inline-image', src: url, alt: record.name, 'data-testid': 'inline-image', decoding: 'async' });
    img.addEventListener('error', () => {
      img.replaceWith(fileCard(record, 'not a viewable image', url));
    }, { once: true });
    const caption = el('div', { class: 'image-caption' });
    caption.append(el('span', { class: 'file-name', 'data-testid': 'file-name', text: record.name }));
    const a = el('a', { class: 'caption-download', href: url, download: record.name, 'data-testid': 'file-link' },
      'Download · ' + formatSize(record.size),
      el('span', { class: 'sr-only', text: ' (' + record.name + ')' }));
    caption.append(a);
    record.holder.replaceChildren(img, caption);
  } else {
    record.holder.replaceChildren(fileCard(record, '', url));
  }
}
