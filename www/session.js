// Being in a room: joining it (from the form, a reload or a new tab),
// leaving it, and being refused or removed, which all start the room's
// conversation afresh.
import { $, saved, tabSaved } from './util.js';
import { setSelf, resetLog } from './log.js';
import { openOutbox, closeOutbox } from './outbox.js';
import { resetUploads } from './uploads.js';
import { forgetToken } from './identity.js';
import { showSignIn } from './signin.js';
import { state, STORE_NAME, STORE_ROOM, STORE_AUTO, TAB_JOINED } from './state.js';
import {
  updateComposer, setJoining, showJoin, showChat, renderPresence, renderTyping,
} from './view.js';
import { clearToasts } from './toasts.js';
import { connect, stopConnecting } from './connection.js';
import { stopRetrying } from './composer.js';

const joinName = $('join-name');
const joinRoom = $('join-room');

/** Joins `room` as `name`; `how` is 'typed', 'reload' or 'auto' (see state.how). */
export function start(name, room, how) {
  saved.set(STORE_NAME, name);
  saved.set(STORE_ROOM, room);
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

/** Out of the room: no reconnecting, and no going back in on a reload or the next visit. */
function giveUp() {
  state.wanted = false;
  saved.remove(STORE_AUTO);
  tabSaved.remove(TAB_JOINED);
  stopConnecting();
}

export function leave() {
  giveUp();
  resetConversation();
  showJoin();
}

/** A refused join: back to the form, with the field to change focused. */
export function refuseJoin(code, text) {
  giveUp();
  const room = '#' + state.room;
  resetConversation();
  switch (code) {
    case 'removed':
      return showJoin(text, joinName);
    case 'token_invalid':
    case 'token_expired':
      forgetToken();
      showSignIn();
      return showJoin(text, joinName);
    case 'banned':
    case 'token_required':
    case 'name_mismatch':
      return showJoin(text, joinName);
    case 'room_forbidden':
      return showJoin(text, joinRoom);
    case 'name_taken':
      // This browser's own tabs share its key and are let in: a name
      // taken is someone else's, or one that looks the same.
      return showJoin('Someone in ' + room + ' is already called “' + state.name + '”, or by a name that looks the same. Pick another name.', joinName);
    case 'invalid_name':
      return showJoin('That name is not allowed (' + text + '). Pick another name.', joinName);
    case 'invalid_room':
      return showJoin('That room name is not allowed (' + text + '). Pick another room.', joinRoom);
    default:
      return showJoin('The server refused to let you in: ' + text + '.', joinName);
  }
}

function resetConversation() {
  closeOutbox();
  clearTimeout(state.flushTimer);
  state.flushTimer = null;
  stopRetrying();
  resetLog();
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
