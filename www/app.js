// wschat page: speaks the `wschat.v1` subprotocol (docs/PROTOCOL.md) to /ws
// on the same origin. This file is where the page starts: it ties the
// modules together, handles the join form and joins again after a reload.
// The modules, each loaded from here or from one another (no build step):
//   state.js       a session per room: who, which room, the connection's progress
//   connection.js  the WebSocket: joining, sending frames, reconnecting
//   events.js      what the server says, event by event
//   session.js     joining rooms, showing one, leaving one, being refused or removed
//   composer.js    sending messages, and typing news
//   view.js        screens, status line, composer notice, people, typing, room bar
//   toasts.js      short-lived messages in the corner
//   log.js         the message list, and keeping the newest message in view
//   scrollback.js  older pages of the room (scrolling back) and the search box
//   markdown.js    a message's text as a little Markdown, built as elements
//   mentions.js    completing @names, notifying of mentions when hidden
//   outbox.js      messages sent or typed but not yet confirmed by the server
//   uploads.js     picking and sending files
//   panel.js       the people panel on narrow screens
//   identity.js    this browser's key, sign-in tokens, refusals in words
//   signin.js      the join form's sign-in link: name locked, Sign out, links needed
//   limits.js      what the server accepts (from its welcome)
//   util.js        small helpers: elements, storage, sizes and times in words
// Every piece of user content (names, rooms, messages, file names, errors)
// is put into the page with textContent or as attribute values, never as HTML
// (a message's Markdown too: markdown.js builds its elements one by one).

import { $, saved, tabSaved, checkName } from './util.js';
import { forgetToken } from './identity.js';
import { linkName, showSignIn, learnServer } from './signin.js';
import {
  state, online, rooms, within, shownRoom, STORE_NAME, STORE_ROOM, STORE_AUTO, TAB_JOINED,
} from './state.js';
import {
  updateComposer, setStatus, setNotice, clearNotice, setJoinError, showJoin,
} from './view.js';
import { connectUploads } from './uploads.js';
import { dismissNewest } from './toasts.js';
import { setMentionable } from './log.js';
import './mentions.js';
import { onConnection, sendFrame, reconnectAll } from './connection.js';
import { handleEvent, handleBinary, onClose } from './events.js';
import {
  start, leave, showRoom, seen,
} from './session.js';

const joinForm = $('join-form');
const joinName = $('join-name');
const joinRoom = $('join-room');
const leaveButton = $('leave-button');
const messageInput = $('message-input');

onConnection({
  event: handleEvent,
  binary: handleBinary,
  closed: onClose,
  status: setStatus,
  composer: updateComposer,
});

setMentionable(() => state.users);

connectUploads({
  socket: () => (online() ? state.ws : null),
  sendFrame,
  budget: () => state.budget,
  limits: () => state.limits,
  notice: (kind, text) => (kind ? setNotice(kind, text) : clearNotice()),
  changed: () => updateComposer(),
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) {
    reconnectAll();
    seen();
  }
});

// Escape closes the people panel (panel.js) or the drop overlay
// (uploads.js); otherwise it puts away the newest toast. Added here, after
// every module has added its own, so that it runs last.
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !e.defaultPrevented) dismissNewest();
});

leaveButton.addEventListener('click', leave);

// Another room beside those the tab is in: the join form, with the way back.
$('add-room').addEventListener('click', () => {
  joinName.value = state.name || joinName.value;
  joinRoom.value = '';
  showJoin('', joinRoom);
});
$('join-back').addEventListener('click', () => {
  if (rooms.includes(shownRoom())) showRoom(shownRoom());
  else if (rooms.length) showRoom(rooms[rooms.length - 1]);
  messageInput.focus();
});

// Sign out: this browser forgets the sign-in link (and stops going back in
// by itself); the name becomes free to change.
$('sign-out').addEventListener('click', () => {
  for (const s of rooms.slice()) within(s, leave);
  forgetToken();
  saved.remove(STORE_AUTO);
  showSignIn();
  joinName.focus();
});

for (const field of [joinName, joinRoom]) {
  field.addEventListener('input', () => {
    if (field.getAttribute('aria-invalid')) setJoinError('', null);
  });
}

joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  if (state.joining) return;
  const name = joinName.value.trim();
  const room = joinRoom.value.trim() || 'lobby';
  const nameProblem = checkName(name, 'name');
  const roomProblem = checkName(room, 'room name');
  if (nameProblem || roomProblem) {
    setJoinError(nameProblem || roomProblem, nameProblem ? joinName : joinRoom);
    return;
  }
  setJoinError('', null);
  start(name, room, 'typed');
});

// ------------------------------------------------------------------- start

/** The rooms this tab was in before it was reloaded, the one shown last ([] if none). */
function savedTab() {
  let list = [];
  try {
    const v = JSON.parse(tabSaved.get(TAB_JOINED) || 'null');
    list = Array.isArray(v) ? v : [v]; // one {room, name} from a page of before
  } catch (_) { /* not ours */ }
  list = list.filter((v) => v && typeof v.name === 'string' && typeof v.room === 'string'
    && !checkName(v.name, 'name') && !checkName(v.room, 'room'));
  return list.filter((v) => !v.shown).concat(list.filter((v) => v.shown));
}

const savedName = saved.get(STORE_NAME);
const savedRoom = saved.get(STORE_ROOM) || 'lobby';
// A sign-in link followed while the page is open starts it again with it.
window.addEventListener('hashchange', () => {
  if (/(?:^#|&)token=/.test(location.hash)) location.reload();
});

const tabRooms = savedTab();
const tabWas = tabRooms.length ? tabRooms[tabRooms.length - 1] : null;
const signedIn = linkName();
joinName.value = tabWas ? tabWas.name : savedName;
// A sign-in link says who this is: the server takes no other name.
showSignIn();
learnServer();
joinRoom.value = tabWas ? tabWas.room : savedRoom;
if (tabWas) {
  // This tab was in rooms before it was reloaded: go straight back in,
  // showing the one that was shown.
  for (const v of tabRooms) start(signedIn || v.name, v.room, 'reload');
} else if (saved.get(STORE_AUTO) === '1' && savedName && !checkName(savedName, 'name') && !checkName(savedRoom, 'room')) {
  // Remembered from last time: join again, from the join screen.
  start(savedName, savedRoom, 'auto');
} else {
  showJoin();
}
