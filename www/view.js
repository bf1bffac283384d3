// What the page shows from the state (state.js), outside the message list
// (log.js): which screen, the join form's button and error, the status line,
// the composer's counter, send button and notice, the people list, who is
// typing, and the tab's title.
import { $, el, utf8Length, formatLimit, formatCount, avatar } from './util.js';
import {
  state, online, isShown, rooms, shownRoom,
} from './state.js';
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
const roomBar = $('room-bar');
const joinBack = $('join-back');
const roomList = $('room-list');

// ------------------------------------------------------------------ status

/** The line under the room name; `retry` is a countdown kept out of the live region. */
export function setStatus(kind, text, retry) {
  state.status = [kind, text, retry || ''];
  if (!isShown()) return;
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
  if (!isShown()) return;
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
  if (!isShown()) return;
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
  joinBack.hidden = rooms.length === 0;
  setJoining(false);
  document.title = 'wschat';
  setJoinError(errorText, field || (joinName.value ? joinRoom : joinName));
}

export function showChat() {
  if (!isShown()) return;
  joinScreen.hidden = true;
  chatScreen.hidden = false;
  roomNameEl.textContent = state.room;
  dropRoom.textContent = state.room;
  updateTitle();
}

export function updateTitle() {
  renderRooms();
  if (!isShown()) return;
  const base = '#' + state.room + ' · wschat';
  // "(3, @1)": three messages since the tab was last seen, one of them a mention.
  let count = '';
  if (state.unread > 0) count = '(' + state.unread + (state.unreadMentions > 0 ? ', @' + state.unreadMentions : '') + ') ';
  document.title = count + base;
}

/** Everything outside the message list, for the room just shown. */
export function renderShown() {
  const [kind, text, retry] = state.status;
  setStatus(kind, text, retry);
  renderPresence();
  renderTyping();
  updateTitle();
}

// ------------------------------------------------------------------ rooms

/** A room's button's name: the room and, in words, what came there unseen ("dev, 3 unread, 1 mention"). */
function roomLabel(s) {
  const parts = [s.room];
  if (s.unread > 0) parts.push(s.unread + ' unread');
  if (s.unreadMentions > 0) parts.push(s.unreadMentions + (s.unreadMentions === 1 ? ' mention' : ' mentions'));
  return parts.join(', ');
}

/** The room bar: a button for each room this tab is in, the shown one marked. */
export function renderRooms() {
  const shown = shownRoom();
  const have = new Map(Array.from(roomList.children, (li) => [li.firstChild.dataset.key, li]));
  const items = rooms.map((s) => {
    if (!s.barKey) s.barKey = String(++barKeys);
    let li = have.get(s.barKey);
    if (!li) {
      const button = el('button', { type: 'button', class: 'room-tab', 'data-testid': 'room-tab', 'data-key': s.barKey });
      // Its name says the counts in words; what shows of them (the unread
      // count, "@" for mentions) reads as part of that name, as WCAG 2.5.3
      // asks: "dev 3 @" in "dev, 3 unread, 1 mention" (the spaces keep the
      // words apart when the text is read; a flex box does not draw them).
      button.append(el('span', { class: 'hash', 'aria-hidden': 'true', text: '#' }), ' ', el('span', { class: 'room-tab-name' }),
        ' ', el('span', { class: 'room-tab-count' }), ' ', el('span', { class: 'room-tab-at', text: '@' }));
      button.addEventListener('click', () => roomPicked(s));
      li = el('li', {}, button);
    }
    const button = li.firstChild;
    button.dataset.room = s.room;
    if (s === shown && !chatScreen.hidden) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
    button.querySelector('.room-tab-name').textContent = s.room;
    button.setAttribute('aria-label', roomLabel(s));
    const count = button.querySelector('.room-tab-count');
    count.textContent = s.unread > 0 ? String(s.unread) : '';
    count.hidden = s.unread === 0;
    button.querySelector('.room-tab-at').hidden = s.unreadMentions === 0;
    button.classList.toggle('mentioned', s.unreadMentions > 0);
    return li;
  });
  roomList.replaceChildren(...items);
  roomBar.hidden = rooms.length === 0;
}

let barKeys = 0;
let roomPicked = () => {};

/** What a room's button does (session.js: show that room). */
export function onRoomPicked(f) {
  roomPicked = f;
}

// ------------------------------------------------------------ people, typing

export function renderPresence() {
  if (!isShown()) return;
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
  if (!isShown()) return;
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
