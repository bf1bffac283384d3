// Being in rooms: joining one (from the form, a reload or a new tab),
// showing one of them, leaving one, and being refused or removed, which all
// start that room's conversation afresh. Each room has a session of its own
// (state.js), with its own socket; the others go on while one is shown.
import { $, saved, tabSaved } from './util.js';
import {
  setSelf, resetLog, putAwayLog, bringBackLog, dropLog, showUnread,
} from './log.js';
import { openOutbox, closeOutbox } from './outbox.js';
import { resetUploads, putAwayUploads, bringBackUploads } from './uploads.js';
import { forgetToken } from './identity.js';
import { showSignIn } from './signin.js';
import {
  state, rooms, newSession, session, shownRoom, showSession, within, isShown,
  STORE_NAME, STORE_ROOM, STORE_AUTO, TAB_JOINED,
} from './state.js';
import {
  updateComposer, setJoining, showJoin, showChat, renderPresence, renderTyping, renderShown, renderRooms, onRoomPicked,
} from './view.js';
import { clearToasts, toast } from './toasts.js';
import { connect, stopConnecting } from './connection.js';
import { stopRetrying } from './composer.js';

const joinName = $('join-name');
const joinRoom = $('join-room');

/** The session of this tab's `room`, if it is in it. */
function roomSession(room) {
  const key = room.toLowerCase();
  return rooms.find((s) => s.room.toLowerCase() === key) || null;
}

/**
 * Joins `room` as `name` beside the rooms this tab is in already, and
 * shows it; `how` is 'typed', 'reload' or 'auto' (see state.how).
 */
export function start(name, room, how) {
  saved.set(STORE_NAME, name);
  saved.set(STORE_ROOM, room);
  const already = roomSession(room);
  if (already) {
    showRoom(already);
    return;
  }
  const shown = shownRoom();
  if (rooms.includes(shown)) {
    // Another room is shown: it goes on behind this one.
    putAwayLog();
    putAwayUploads();
    showSession(newSession());
  } else {
    // Nothing is shown: its session (and list) is taken afresh.
    const { view } = shown;
    Object.assign(shown, newSession(), { view });
  }
  rooms.push(session());
  resetConversation();
  state.name = name;
  state.room = room;
  state.how = how;
  setSelf(name);
  // What this tab had not got confirmed in this room, before a reload.
  openOutbox(room, name);
  state.wanted = true;
  state.attempt = 0;
  state.nameTakenRetries = 0;
  // Only a reload of this very tab can meet its own previous connection
  // still holding the name; a new tab meeting the name is someone else.
  state.retryNameTaken = how === 'reload';
  setJoining(true);
  if (how === 'reload') showChat();
  connect();
}

/** Keeps this tab's rooms for a reload: those it got into (or was in before the last one). */
export function saveTab() {
  const list = rooms.filter((s) => s.wanted && (s.joined || s.everJoined || s.how === 'reload'))
    .map((s) => ({ room: s.room, name: s.name, shown: s === shownRoom() }));
  if (list.length) tabSaved.set(TAB_JOINED, JSON.stringify(list));
  else tabSaved.remove(TAB_JOINED);
}

/** Shows the room of session `s`, its list as it was left, and counts what came there as seen. */
export function showRoom(s) {
  const before = shownRoom();
  if (before !== s) {
    if (rooms.includes(before)) {
      putAwayLog();
      putAwayUploads();
    }
    showSession(s);
    bringBackLog();
    bringBackUploads();
  }
  showChat();
  renderShown();
  updateComposer();
  seen();
  saveTab();
}

/** The shown room has been seen (the tab is visible): its unread count goes, its divider shows. */
export function seen() {
  if (document.hidden || !rooms.includes(shownRoom())) return;
  showUnread();
  state.unread = 0;
  state.unreadMentions = 0;
  renderShown();
}

onRoomPicked((s) => {
  showRoom(s);
  $('message-input').focus();
});

/**
 * Out of the room acted on: no reconnecting, and no going back in on a
 * reload; out of every room, not on the next visit either.
 */
function giveUp() {
  state.wanted = false;
  stopConnecting();
  const i = rooms.indexOf(session());
  if (i >= 0) rooms.splice(i, 1);
  if (!rooms.length) saved.remove(STORE_AUTO);
  saveTab();
}

/**
 * After the room acted on was given up: with other rooms left it goes
 * (another is shown if it was), true; false when it was the last, and the
 * caller shows the join form.
 */
function dropped() {
  if (!rooms.length) {
    resetConversation();
    return false;
  }
  closeOutbox();
  resetConversation({ keepList: true });
  dropLog();
  const wasShown = isShown();
  renderRooms();
  if (wasShown) showRoom(rooms[rooms.length - 1]);
  return true;
}

/** Leaves the room shown; the tab's other rooms stay. */
export function leave() {
  giveUp();
  if (!dropped()) showJoin();
  else $('message-input').focus();
}

/**
 * A refused join, or a removal: back to the form, with the field to change
 * focused; when the tab is in other rooms and this one was not being
 * joined from the form, the refusal is a toast and the others go on.
 */
export function refuseJoin(code, text) {
  const joiningHere = isShown() && !state.everJoined && state.how === 'typed';
  const msg = refusalText(code, text);
  giveUp();
  if (dropped()) {
    if (joiningHere) showJoin(msg.text, msg.field);
    else toast(msg.text);
    return undefined;
  }
  return showJoin(msg.text, msg.field);
}

/**
 * A join that never got in (the server could not be reached): said on the
 * form, or in a toast when the tab is in other rooms and this one was not
 * being joined from the form. The next visit still goes back in.
 */
export function joinFailed(text) {
  const joiningHere = isShown() && state.how === 'typed';
  state.wanted = false;
  stopConnecting();
  const i = rooms.indexOf(session());
  if (i >= 0) rooms.splice(i, 1);
  saveTab();
  if (!rooms.length) return showJoin(text);
  dropped();
  if (joiningHere) return showJoin(text);
  return toast(text);
}

/** A refusal in words, and the join form's field it is about. */
function refusalText(code, text) {
  const room = '#' + state.room;
  const say = (t, field) => ({ text: t, field });
  switch (code) {
    case 'removed':
      return say(text, joinName);
    case 'token_invalid':
    case 'token_expired':
      forgetToken();
      showSignIn();
      return say(text, joinName);
    case 'banned':
    case 'token_required':
    case 'name_mismatch':
      return say(text, joinName);
    case 'room_forbidden':
      return say(text, joinRoom);
    case 'name_taken':
      // This browser's own tabs share its key and are let in: a name
      // taken is someone else's, or one that looks the same.
      return say('Someone in ' + room + ' is already called “' + state.name + '”, or by a name that looks the same. Pick another name.', joinName);
    case 'invalid_name':
      return say('That name is not allowed (' + text + '). Pick another name.', joinName);
    case 'invalid_room':
      return say('That room name is not allowed (' + text + '). Pick another room.', joinRoom);
    default:
      return say('The server refused to let you in: ' + text + '.', joinName);
  }
}

function resetConversation({ keepList = false } = {}) {
  closeOutbox();
  clearTimeout(state.flushTimer);
  state.flushTimer = null;
  stopRetrying();
  if (!keepList) resetLog();
  state.seenIds.clear();
  state.lastSeenId = null;
  state.epoch = null;
  state.joinedWith = null;
  state.unread = 0;
  state.unreadMentions = 0;
  state.users = [];
  state.seenBefore.clear();
  state.quietUntil = 0;
  state.everJoined = false;
  state.offline = null;
  state.rejoining = false;
  state.notice = null;
  for (const t of state.typists.values()) clearTimeout(t);
  state.typists.clear();
  resetUploads();
  clearToasts();
  renderPresence();
  renderTyping();
  updateComposer();
}
