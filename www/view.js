// What the page shows from the state (state.js), outside the message list
// (log.js): which screen, the join form's button and error, the status line,
// the composer's counter, send button and notice, the people list, who is
// typing, and the tab's title.
import { $, el, utf8Length, formatLimit, formatCount, avatar } from './util.js';
import { state, online } from './state.js';
import { closePeople } from './panel.js';
import { waiting } from './outbox.js';
import { uploadsWaiting } from './uploads.js';

const COUNTER_FROM = 0.8; // the length counter shows once a message uses this much of the limit

const joinScreen = $('join-screen');
const joinName = $('join-name');
const joinRoom = $('join-room');
const joinError = $('join-error');
const joinButton = $('join-button');
const chatScreen = $('chat-screen');
const roomNameEl = $('room-name');
const statusEl = $('status');
const statusText = $('status-text');
const statusRetry = $('status-retry');
const typingEl = $('typing');
const notice = $('composer-notice');
const noticeText = $('composer-notice-text');
const reconnectButton = $('reconnect-now');
const input = $('message-input');
const counter = $('char-counter');
const sendButton = $('send-button');
const presenceEl = $('presence');
const presenceNote = $('presence-note');
const peopleCount = $('people-count');
const peopleCount2 = $('people-count-2');
const dropRoom = $('drop-room');

// ------------------------------------------------------------------ status

/** The line under the room name; `retry` is a countdown kept out of the live region. */
export function setStatus(kind, text, retry) {
  statusEl.dataset.state = kind;
  if (statusText.textContent !== text) statusText.textContent = text;
  statusRetry.textContent = retry || '';
  updateComposer();
}

// --------------------------------------------------------------- composer

export function textTooLong(over) {
  const limit = state.limits.text;
  return 'Too long to send: shorten it by ' + formatCount(over) + (over === 1 ? ' byte' : ' bytes')
    + '. A message can be ' + formatLimit(limit) + ' (' + formatCount(limit) + ' bytes) at most; '
    + 'accented letters and emoji take 2 to 4 bytes each.';
}

/** Counter, send button and the notice above the composer, from the state. */
export function updateComposer() {
  const limit = state.limits.text;
  const bytes = utf8Length(input.value);
  const over = bytes - limit;
  if (bytes >= limit * COUNTER_FROM) {
    counter.hidden = false;
    counter.dataset.state = over > 0 ? 'over' : 'near';
    counter.textContent = over > 0 ? formatCount(over) + ' over' : formatCount(limit - bytes) + ' left';
    counter.title = 'Bytes left of the ' + formatCount(limit) + ' a message can hold';
  } else {
    counter.hidden = true;
    counter.textContent = '';
  }
  sendButton.disabled = input.value.trim() === '' || over > 0;

  let shown = state.notice;
  if (!shown && over > 0) shown = { kind: 'error', text: textTooLong(over) };
  if (!shown && state.wanted && !online()) {
    if (state.rejoining) {
      shown = { kind: 'info', text: 'Rejoining #' + state.room + ': the server still holds the name “' + state.name + '” for this page’s previous connection.' };
    } else if (state.offline) {
      shown = { kind: 'offline', text: 'Not connected: ' + state.offline.why + '. ' + waitingInWords() };
    } else if (state.everJoined || state.how === 'reload') {
      shown = { kind: 'info', text: 'Connecting to #' + state.room + '…' };
    }
  }
  if (!shown && state.storeTrouble && online() && waiting() + uploadsWaiting() > 0) {
    shown = { kind: 'info', text: 'The server cannot store messages just now: yours wait here and go again shortly.' };
  }
  const text = shown ? shown.text : '';
  if (noticeText.textContent !== text) noticeText.textContent = text;
  if (shown) notice.dataset.kind = shown.kind;
  else delete notice.dataset.kind;
  reconnectButton.hidden = !(shown && shown.kind === 'offline' && state.reconnectTimer);
}

/** What is waiting to be sent, in words, for the offline notice. */
function waitingInWords() {
  const n = waiting() + uploadsWaiting();
  if (n === 0) return 'What you send now will be sent when you are back.';
  return (n === 1 ? '1 message is waiting' : formatCount(n) + ' messages are waiting') + ' and will be sent when you are back.';
}

export function setNotice(kind, text) {
  state.notice = { kind, text };
  updateComposer();
}

export function clearNotice() {
  if (!state.notice) return;
  state.notice = null;
  updateComposer();
}

// ------------------------------------------------------------------ screens

export function setJoining(on) {
  state.joining = on;
  joinButton.textContent = on ? 'Joining…' : 'Join';
  if (on) joinButton.setAttribute('aria-disabled', 'true');
  else joinButton.removeAttribute('aria-disabled');
}

/** Shows `text` on the join form, tied to `field` (the input it is about), which gets focus. */
export function setJoinError(text, field) {
  for (const f of [joinName, joinRoom]) {
    f.removeAttribute('aria-invalid');
    // A field's own hint (data-describedby: the sign-in link's, signin.js) stays.
    if (f.dataset.describedby) f.setAttribute('aria-describedby', f.dataset.describedby);
    else f.removeAttribute('aria-describedby');
  }
  joinError.textContent = text || '';
  joinError.hidden = !text;
  if (text && field) {
    field.setAttribute('aria-invalid', 'true');
    field.setAttribute('aria-describedby', [field.dataset.describedby, 'join-error'].filter(Boolean).join(' '));
  }
  if (field) {
    field.focus();
    field.select();
  }
}

export function showJoin(errorText, field) {
  closePeople({ restoreFocus: false });
  chatScreen.hidden = true;
  joinScreen.hidden = false;
  setJoining(false);
  document.title = 'wschat';
  setJoinError(errorText, field || (joinName.value ? joinRoom : joinName));
}

export function showChat() {
  joinScreen.hidden = true;
  chatScreen.hidden = false;
  roomNameEl.textContent = state.room;
  dropRoom.textContent = state.room;
  updateTitle();
}

export function updateTitle() {
  const base = '#' + state.room + ' · wschat';
  // "(3, @1)": three messages since the tab was last seen, one of them a mention.
  let count = '';
  if (state.unread > 0) count = '(' + state.unread + (state.unreadMentions > 0 ? ', @' + state.unreadMentions : '') + ') ';
  document.title = count + base;
}

// ------------------------------------------------------------ people, typing

export function renderPresence() {
  // While not connected nobody can say who is in the room: the list shows
  // who was there last, marked as such, without "online" dots or a count.
  const known = state.joined;
  const users = state.users.slice().sort((a, b) => {
    if (a === state.name) return -1;
    if (b === state.name) return 1;
    return a.localeCompare(b);
  });
  presenceEl.classList.toggle('unknown', !known);
  presenceNote.hidden = known;
  presenceNote.textContent = known ? '' : 'Not connected: who is here now is unknown.'
    + (users.length ? ' Last seen here:' : '');
  presenceEl.replaceChildren(...users.map((u) => {
    const li = el('li', { class: 'person' + (u === state.name ? ' me' : ''), 'data-testid': 'presence-user', 'data-name': u });
    li.append(avatar(u, 'small'));
    li.append(el('span', { class: 'person-name', text: u }));
    if (u === state.name) li.append(el('span', { class: 'you-tag', text: 'you' }));
    return li;
  }));
  const n = known ? String(state.users.length) : '?';
  peopleCount.textContent = n;
  peopleCount2.textContent = n;
}

export function renderTyping() {
  const names = Array.from(state.typists.keys());
  typingEl.replaceChildren();
  typingEl.classList.toggle('active', names.length > 0);
  if (names.length === 0) return;
  let text;
  if (names.length === 1) text = names[0] + ' is typing';
  else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing';
  else text = 'Several people are typing';
  typingEl.append(el('span', { class: 'dots', 'aria-hidden': 'true' }, el('i'), el('i'), el('i')));
  typingEl.append(el('span', { 'data-testid': 'typing-text', text }));
}
