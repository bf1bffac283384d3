// The message list: bubbles grouped by sender, notes, day dividers, file
// cards and inline images, and keeping the newest message in view. What this
// page has sent and the server has not confirmed yet waits at the end of the
// list, in the outbox, marked as not sent.
import {
  $, el, svgIcon, ICON_FILE, ICON_DOWNLOAD, avatar, formatSize, formatTime, dayKey, dayLabel,
} from './util.js';
import { renderMarkdown } from './markdown.js';
import { expired, renewFileUrl, usableUrl } from './fileurls.js';
import { perRoom, isShown } from './state.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000; // one sender's bubbles this close together share a group
const BOTTOM_SLACK_PX = 80; // this close to the end counts as "at the newest message"
const TOP_SLACK_PX = 48; // this close to the top asks for older messages

const messagesEl = $('messages');
const emptyState = $('empty-state');
const newMessagesBtn = $('new-messages');
const olderBtn = $('load-older');
const historyStart = $('history-start');
// Always the list's last child. Its bubbles are not announced as they come
// (the composer's notice says what waits); the server's copy of each, once
// it comes, is announced where it belongs in the log.
const outboxEl = el('div', { class: 'outbox', 'data-testid': 'outbox', 'aria-live': 'off' });
messagesEl.append(outboxEl);
// Another room's list starts as this one did.
const emptyTemplate = emptyState.cloneNode(true);
emptyTemplate.removeAttribute('id');
let firstList = true;

// The only types a received file's bytes are ever given, and so the only
// files shown inline: raster images, which cannot run script. Anything else,
// whatever type it was announced with (image/svg+xml, text/html…), is opaque
// bytes that can only be downloaded.
const RASTER = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

function rasterType(mime) {
  const type = String(mime || '').split(';')[0].trim().toLowerCase();
  return RASTER.has(type) ? type : '';
}

// Each room keeps its own list (state.js perRoom): the room shown has its
// nodes in the page's list, the others in a `holder` of their own, with
// where they were scrolled to.
const log = perRoom('log', () => {
  const first = firstList;
  firstList = false;
  return {
    empty: first ? emptyState : emptyTemplate.cloneNode(true),
    outbox: first ? outboxEl : el('div', { class: 'outbox', 'data-testid': 'outbox', 'aria-live': 'off' }),
    holder: first ? null : el('div'),
    scrollTop: 0, // while another room is shown: where this one's list was scrolled to
    newBelow: false, // and whether its "New messages" button was showing
    ...listState(),
  };
});

function listState() {
  return {
  self: '', // our own name: our bubbles are set apart
  lastGroup: null, // {from, ts, node} of the newest bubble group
  lastDay: null,
  blobUrls: [],
  // The user is at the newest message. Only scrolling changes this; while it
  // holds, whatever changes the list's size (new messages, an image or file
  // finishing loading, the composer growing) keeps the newest one in view.
  stuck: true,
  unreadDivider: null, // "New since you left", above the first message that came while the tab was hidden
  unreadUnseen: false, // the divider was placed while the tab was hidden and has not been shown yet
  olderDone: false, // the server has said nothing older is kept
  olderLoading: false, // a page of older messages has been asked for and has not come
  batch: null, // while older messages are drawn: the detached list they go into
  };
}

let mentionable = () => []; // who can be @mentioned: the people in the room
let loadOlder = () => {}; // asks the server for the page above the oldest message shown

/** Where the list of the room acted on is: the page's, or its holder while another room is shown. */
function where() {
  if (isShown()) return messagesEl;
  if (!log.holder) log.holder = el('div');
  return log.holder;
}

/** The bubble of message `id` in the list of the room acted on, if it shows it. */
export function bubbleById(id) {
  return where().querySelector(`[data-testid="message"][data-id="${Number(id)}"]`);
}

/** Before another room is shown: the shown room's list goes to its holder, with its scroll position. */
export function putAwayLog() {
  log.scrollTop = messagesEl.scrollTop;
  log.newBelow = !newMessagesBtn.hidden;
  if (!log.holder) log.holder = el('div');
  log.holder.append(...messagesEl.childNodes);
}

/** The room just shown (state.js showSession): its list comes back as it was left. */
export function bringBackLog() {
  if (log.holder) messagesEl.append(...log.holder.childNodes);
  if (log.stuck) scrollToBottom();
  else {
    messagesEl.scrollTop = log.scrollTop;
    newMessagesBtn.hidden = !log.newBelow;
  }
  showOlderButton();
}

/** The room acted on is left: its list and its images' URLs go. */
export function dropLog() {
  for (const url of log.blobUrls) URL.revokeObjectURL(url);
  log.blobUrls = [];
  if (isShown()) messagesEl.replaceChildren();
  if (log.holder) log.holder.replaceChildren();
}

export function setSelf(name) {
  log.self = name;
}

/** `names()` gives who can be @mentioned in a message (the people in the room). */
export function setMentionable(names) {
  mentionable = names;
}

export function resetLog() {
  for (const url of log.blobUrls) URL.revokeObjectURL(url);
  log.blobUrls = [];
  log.lastGroup = null;
  log.lastDay = null;
  log.stuck = true;
  log.unreadDivider = null;
  log.unreadUnseen = false;
  log.olderDone = false;
  log.olderLoading = false;
  showOlderButton();
  sizes.disconnect();
  sizes.observe(messagesEl);
  // What waits to be sent stays: it is not part of the room's history yet.
  where().replaceChildren(log.empty, log.outbox);
  for (const node of log.outbox.children) sizes.observe(node);
  log.empty.hidden = log.outbox.childElementCount > 0;
  if (isShown()) newMessagesBtn.hidden = true;
}

// ---------------------------------------------------------------- scrolling

function atBottom() {
  return messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < BOTTOM_SLACK_PX;
}

export function scrollToBottom() {
  log.stuck = true;
  if (!isShown()) return;
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
  // Reading up to the top brings the page above it.
  if (messagesEl.scrollTop < TOP_SLACK_PX && messagesEl.scrollHeight > messagesEl.clientHeight) loadOlder();
});

olderBtn.addEventListener('click', () => loadOlder());

// ------------------------------------------------------------ older messages

/** `fn()` asks for the page above the oldest message shown (scrollback.js). */
export function onLoadOlder(fn) {
  loadOlder = fn;
}

/** Whether older messages may be asked for: none asked for now, and some may be kept. */
export function olderWanted() {
  return !log.olderDone && !log.olderLoading;
}

/** Whether a page is on its way (`loading`), and whether nothing older is kept (`done`). */
export function olderState() {
  return { loading: log.olderLoading, done: log.olderDone };
}

/** What is known of the room's older messages: `loading`, `done` (nothing older is kept). */
export function setOlder({ loading, done }) {
  if (loading !== undefined) log.olderLoading = loading;
  if (done !== undefined) log.olderDone = done;
  showOlderButton();
}

function showOlderButton() {
  if (!isShown()) return;
  // The button and the words that take its place share one bar, so that the
  // list below does not move when one replaces the other.
  olderBtn.hidden = log.olderDone;
  historyStart.hidden = !log.olderDone;
  olderBtn.textContent = log.olderLoading ? 'Loading older messages…' : 'Load older messages';
  olderBtn.setAttribute('aria-busy', log.olderLoading ? 'true' : 'false');
}

/** The id of the oldest message or file shown, or 0 when none is. */
export function oldestShownId() {
  const first = where().querySelector('[data-testid="message"][data-id]');
  return first ? Number(first.dataset.id) : 0;
}

/** The bubble of message `id`, if it is shown. */
export function bubbleOf(id) {
  return where().querySelector(`[data-testid="message"][data-id="${Number(id)}"]`);
}

/** Scrolls message `id`'s bubble into view, marks it for a moment and moves the focus to it. */
export function revealMessage(id) {
  const bubble = bubbleOf(id);
  if (!bubble || !isShown()) return false;
  for (const old of messagesEl.querySelectorAll('.bubble.found')) old.classList.remove('found');
  bubble.classList.add('found');
  bubble.setAttribute('tabindex', '-1');
  bubble.scrollIntoView({ block: 'center' });
  bubble.focus({ preventScroll: true });
  log.stuck = atBottom();
  return true;
}

/**
 * Draws a page of older messages above the oldest shown: `render()` adds
 * them, oldest first, with the ordinary functions (addTextBubble…), which
 * put them in a detached list; that list then goes in at the top, and the
 * view keeps its place (what the person was reading does not move).
 */
export function addOlder(render) {
  const newest = { group: log.lastGroup, day: log.lastDay };
  log.lastGroup = null;
  log.lastDay = null;
  log.batch = el('div');
  const batch = log.batch;
  try {
    render();
  } finally {
    log.batch = null;
  }
  const batchDay = log.lastDay;
  log.lastGroup = newest.group;
  log.lastDay = newest.day === null ? batchDay : newest.day;
  if (batch.childElementCount === 0) return;
  // What was at the top stays where it is on the screen.
  let top = log.empty.nextElementSibling;
  const divider = top && top.classList.contains('day-divider') && top.dataset.day === batchDay ? top : null;
  if (divider) top = top.nextElementSibling;
  const anchor = top && top !== log.outbox ? top : null;
  const was = anchor ? anchor.getBoundingClientRect().top : 0;
  // The day the page ends on may be the day the list began with: one divider.
  if (divider) divider.remove();
  const nodes = [...batch.children];
  log.empty.after(...nodes);
  log.empty.hidden = true;
  for (const node of nodes) sizes.observe(node);
  if (anchor && isShown() && !log.stuck) messagesEl.scrollTop += anchor.getBoundingClientRect().top - was;
}

newMessagesBtn.addEventListener('click', () => {
  const hadFocus = document.activeElement === newMessagesBtn;
  scrollToBottom();
  // The button goes away; keyboard focus goes to the list it scrolled.
  if (hadFocus) messagesEl.focus();
});

/** Something came below where the person is reading: the "New messages" button says so. */
function newBelow() {
  if (isShown()) newMessagesBtn.hidden = false;
  else log.newBelow = true;
}

/** Adds `node` at the end of the list; `showNow` scrolls to it whatever the user was reading. */
function append(node, { showNow = false, announce = true } = {}) {
  if (log.batch) {
    log.batch.append(node);
    return;
  }
  log.empty.hidden = true;
  where().insertBefore(node, log.outbox);
  sizes.observe(node);
  if (log.stuck || showNow) scrollToBottom();
  else if (announce) newBelow();
}

// ------------------------------------------------------------------ content

function ensureDay(ts) {
  if (!Number.isFinite(ts)) return;
  const key = dayKey(ts);
  if (key === log.lastDay) return;
  log.lastDay = key;
  log.lastGroup = null;
  const label = dayLabel(ts);
  append(el('div', {
    class: 'day-divider', role: 'separator', 'aria-label': label, 'data-day': key,
  }, el('span', { text: label })), { announce: false });
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
  const last = log.batch ? log.batch.lastElementChild : log.outbox.previousElementSibling;
  if (g && g.from === from && ts - g.ts < GROUP_WINDOW_MS && g.node === last) {
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
    'data-cid': typeof msg.cid === 'string' ? msg.cid : undefined,
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
  if (group.parentNode) {
    if (log.batch) return bubble;
    if (log.stuck || showNow) scrollToBottom();
    else newBelow();
  } else {
    append(group, { showNow });
  }
  return bubble;
}

/** A message's text as Markdown (markdown.js); a bubble that mentions us is marked. */
export function addTextBubble(msg, from, text) {
  const body = el('div', { class: 'bubble-text', 'data-testid': 'message-text' });
  const mentionsMe = renderMarkdown(body, text, { names: mentionable(), self: log.self }) && from !== log.self;
  const bubble = addBubble(msg, from, body, 'text');
  if (mentionsMe) {
    bubble.dataset.mentionsMe = 'true';
    bubble.classList.add('mentions-me');
    bubble.insertBefore(el('span', { class: 'sr-only', text: ' (mentions you)' }), bubble.querySelector('time'));
  }
  return bubble;
}

/**
 * Puts the "New since you left" divider at the end of the list (where the
 * next message goes), taking it from where it was.
 */
export function markUnreadHere() {
  if (log.unreadDivider) log.unreadDivider.remove();
  log.unreadDivider = el('div', {
    class: 'unread-divider', role: 'separator', 'aria-label': 'New since you left', 'data-testid': 'unread-divider',
  }, el('span', { text: 'New since you left' }));
  log.unreadUnseen = true;
  log.lastGroup = null;
  append(log.unreadDivider, { announce: false });
}

/**
 * Back on the tab: if what came meanwhile has pushed the divider above the
 * list's top, the list is scrolled to show it first (the "New messages"
 * button then leads to the newest).
 */
export function showUnread() {
  if (!log.unreadUnseen || !log.unreadDivider || !log.unreadDivider.isConnected) return;
  log.unreadUnseen = false;
  const above = log.unreadDivider.getBoundingClientRect().top - messagesEl.getBoundingClientRect().top;
  if (above >= 0) return;
  messagesEl.scrollTop += above - 8;
  log.stuck = atBottom();
  newMessagesBtn.hidden = log.stuck;
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

// ------------------------------------------------------------------ outbox

const PENDING_SAYS = {
  queued: 'Not sent yet: it goes when the connection is back',
  sending: 'Sending…',
  retrying: 'Not sent yet: the server cannot store messages just now; it goes shortly',
};

/**
 * Shows a message of ours that the server has not confirmed, at the end of
 * the list; `state` is 'queued' (no connection to send it on), 'sending', or
 * 'retrying' (the server cannot store messages now; it goes shortly).
 * Returns its node, for `setPendingState` and `removePending`.
 */
export function addPending(cid, text, state) {
  const body = el('div', { class: 'bubble-text', 'data-testid': 'message-text' });
  renderMarkdown(body, text, { names: mentionable(), self: log.self });
  const mark = el('span', { class: 'pending-mark', 'data-testid': 'pending-status' });
  const bubble = el('div', {
    class: 'bubble bubble-text pending', 'data-testid': 'pending-message', 'data-cid': cid, 'data-from': log.self,
  }, body, mark);
  const group = el('div', { class: 'group mine pending-group' }, el('div', { class: 'group-body' }, bubble));
  setPendingState(group, state);
  log.empty.hidden = true;
  log.outbox.append(group);
  sizes.observe(group);
  scrollToBottom();
  return group;
}

export function setPendingState(node, state) {
  const bubble = node.querySelector('[data-testid="pending-message"]');
  bubble.dataset.state = state;
  bubble.querySelector('.pending-mark').textContent = PENDING_SAYS[state] || PENDING_SAYS.sending;
}

export function removePending(node) {
  node.remove();
  if (log.outbox.childElementCount === 0 && log.outbox.previousElementSibling === log.empty) log.empty.hidden = false;
}

// -------------------------------------------------------------------- files

/**
 * A file card; `href` makes its button a link to those bytes, `fetchFrom`
 * (a URL on the server) a button that fetches them when pressed.
 */
function fileCard(record, statusText, href, fetchFrom) {
  const card = el('div', { class: 'file-card', 'data-testid': 'file-card' });
  card.append(el('span', { class: 'file-icon' }, svgIcon(ICON_FILE)));
  const meta = el('span', { class: 'file-meta' });
  meta.append(el('span', { class: 'file-name', 'data-testid': 'file-name', text: record.name }));
  meta.append(el('span', { class: 'file-size', text: statusText ? formatSize(record.size) + ' · ' + statusText : formatSize(record.size) }));
  card.append(meta);
  if (fetchFrom) {
    card.append(downloadButton(record, fetchFrom));
  } else if (href) {
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
  const hadFocus = record.holder.contains(document.activeElement);
  record.bubble.dataset.state = 'unavailable';
  record.holder.replaceChildren(fileCard(record, why));
  // Its download button is gone: keyboard focus stays in the list.
  if (hadFocus) messagesEl.focus();
}

/** A URL for `blob`'s bytes, typed as a raster image or else as opaque bytes. */
function typedUrl(record, blob) {
  // Raster images keep their type so <img> can show them; anything else is
  // typed as opaque bytes so that opening its link can only ever download it.
  const typed = new Blob([blob], { type: rasterType(record.mime) || 'application/octet-stream' });
  const url = URL.createObjectURL(typed);
  log.blobUrls.push(url);
  return url;
}

function saveAs(url, name) {
  el('a', { href: url, download: name }).click();
}

/**
 * A button that fetches a file's bytes from the server and saves them,
 * typed as opaque bytes: the server's URL is never opened as a page.
 */
function downloadButton(record, url) {
  const button = el('button', {
    class: 'file-download', type: 'button', 'data-testid': 'file-link', 'data-url': url, title: 'Download ' + record.name,
  }, svgIcon(ICON_DOWNLOAD));
  button.append(el('span', { class: 'sr-only', text: 'Download ' + record.name }));
  let saved = '';
  button.addEventListener('click', async () => {
    if (saved) {
      saveAs(saved, record.name);
      return;
    }
    if (button.getAttribute('aria-busy')) return;
    button.setAttribute('aria-busy', 'true');
    try {
      url = await usableUrl(record, url);
      let res = await fetch(url);
      if (res.status === 403) {
        // Refused: ask the room for a fresh URL, once.
        const fresh = await renewFileUrl(record);
        if (fresh) {
          url = fresh;
          res = await fetch(url);
        }
      }
      if (res.status === 404 || res.status === 410) {
        renderFileUnavailable(record, 'No longer available');
        return;
      }
      if (!res.ok) throw new Error(res.statusText);
      saved = typedUrl({ ...record, mime: '' }, await res.blob());
      button.dataset.href = saved;
      saveAs(saved, record.name);
    } catch (_) {
      button.title = 'Could not download ' + record.name + ': try again';
    } finally {
      button.removeAttribute('aria-busy');
    }
  });
  return button;
}

/** A URL on the server that the page may load: a path under /files/ of its own origin. */
export function fileUrl(url) {
  if (typeof url !== 'string' || !url.startsWith('/files/')) return '';
  try {
    const u = new URL(url, location.href);
    return u.origin === location.origin ? u.pathname + u.search : '';
  } catch (_) {
    return '';
  }
}

/**
 * A file of the room's history whose bytes the server keeps at `url`: a
 * raster image is shown from there, anything else can be downloaded.
 */
export function renderFileRemote(record, url) {
  record.bubble.dataset.state = 'ready';
  if (!rasterType(record.mime)) {
    record.holder.replaceChildren(fileCard(record, '', '', url));
    return;
  }
  const img = el('img', {
    class: 'inline-image', src: url, alt: record.name, 'data-testid': 'inline-image', decoding: 'async', loading: 'lazy',
  });
  let renewed = false;
  const caption = imageCaption(record, url);
  const onError = async () => {
    // Gone from the server, its URL expired, or not an image after all?
    let status = 0;
    try {
      status = (await fetch(url, { method: 'HEAD' })).status;
    } catch (_) { /* unreachable now: offer the download */ }
    if (status === 403 && !renewed) {
      // Expired: a fresh URL from the room, tried once.
      renewed = true;
      const fresh = await renewFileUrl(record);
      if (fresh) {
        url = fresh;
        caption.querySelector('a').href = url;
        img.addEventListener('error', onError, { once: true });
        img.src = url;
        return;
      }
    }
    if (status === 404 || status === 410) renderFileUnavailable(record, 'No longer available');
    else img.replaceWith(fileCard(record, 'not a viewable image', '', url));
  };
  img.addEventListener('error', onError, { once: true });
  record.holder.replaceChildren(img, caption);
}

function imageCaption(record, url) {
  const caption = el('div', { class: 'image-caption' });
  caption.append(el('span', { class: 'file-name', 'data-testid': 'file-name', text: record.name }));
  const a = el('a', { class: 'caption-download', href: url, download: record.name, 'data-testid': 'file-link' },
    'Download · ' + formatSize(record.size),
    el('span', { class: 'sr-only', text: ' (' + record.name + ')' }));
  if (url.startsWith('/files/')) {
    // An expired link is renewed before the browser follows it.
    a.addEventListener('click', (ev) => {
      if (!expired(a.getAttribute('href'))) return;
      ev.preventDefault();
      renewFileUrl(record).then((fresh) => {
        if (!fresh) return;
        a.href = fresh;
        a.click();
      });
    });
  }
  caption.append(a);
  return caption;
}

export function renderFileReady(record, blob) {
  record.bubble.dataset.state = 'ready';
  const url = typedUrl(record, blob);
  if (rasterType(record.mime)) {
    // The image's height is known only once it has loaded; the size
    // observer then keeps the newest message in view.
    const img = el('img', { class: 'inline-image', src: url, alt: record.name, 'data-testid': 'inline-image', decoding: 'async' });
    img.addEventListener('error', () => {
      img.replaceWith(fileCard(record, 'not a viewable image', url));
    }, { once: true });
    record.holder.replaceChildren(img, imageCaption(record, url));
  } else {
    record.holder.replaceChildren(fileCard(record, '', url));
  }
}
