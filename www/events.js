// What the server says (docs/PROTOCOL.md), event by event: the welcome,
// who comes and goes and types, messages and files (each shown once, even
// when a resume replays it), refusals, and the socket's end, which decides
// between reconnecting and going back to the join form.
import { $, saved, utf8Length, formatLimit, formatCount } from './util.js';
import { limitsFrom, FrameBudget } from './limits.js';
import {
  setSelf, resetLog, addTextBubble, addFileBubble, addNote, markUnreadHere,
  renderFilePending, renderFileUnavailable, renderFileReady, renderFileRemote, fileUrl, addOlder, setOlder,
} from './log.js';
import { olderArrived, onSearch, onRateLimited } from './scrollback.js';
import { renameOutbox, requeue, confirm, refused, unstored } from './outbox.js';
import { identityRefusal, removedBy } from './identity.js';
import {
  pumpUploads, ownFileAnnounced, failCurrentUpload, requeueUploads, uploadAwaits, retryUpload,
} from './uploads.js';
import {
  state, isShown, later, STORE_NAME, STORE_ROOM, STORE_AUTO,
} from './state.js';
import {
  setStatus, updateComposer, setNotice, setJoining, showChat, updateTitle, renderPresence, renderTyping,
} from './view.js';
import { toast, clearToasts } from './toasts.js';
import {
  scheduleReconnect, describeClose, comeBack, joinAgainLater,
} from './connection.js';
import {
  flushOutbox, restoreDraft, retryLater, storedAgain,
} from './composer.js';
import { refuseJoin, joinFailed, saveTab } from './session.js';
import { onFileUrl, failFileUrls } from './fileurls.js';
import { notifyMention } from './mentions.js';
import { decorate, applyChange } from './changes.js';

const TYPING_SHOW_MS = 3500; // forget a typist after this long without news
const NAME_TAKEN_RETRIES = 8; // after a reload our old connection may still hold the name
// After the page reconnects, the people it saw before who join within this
// long are coming back with it (their pages reconnect too), not arriving.
const REJOIN_QUIET_MS = 60000;

const JOIN_ERRORS = new Set(['name_taken', 'invalid_name', 'invalid_room', 'bad_field', 'already_joined',
  'banned', 'token_required', 'token_invalid', 'token_expired', 'room_forbidden', 'name_mismatch']);

const input = $('message-input');

export function handleEvent(msg) {
  // A live `file` event is immediately followed by its bytes; anything else
  // arriving first means they are not coming.
  if (state.pendingBinary && msg.type) {
    renderFileUnavailable(state.pendingBinary, 'Transfer interrupted');
    state.pendingBinary = null;
  }
  switch (msg.type) {
    case 'welcome': return onWelcome(msg);
    case 'presence': return onPresence(msg);
    case 'message': return onMessage(msg);
    case 'file': return onFile(msg);
    case 'join': return onJoin(msg);
    case 'leave': return onLeave(msg);
    case 'typing': return onTyping(msg);
    case 'gap': return onGap(msg);
    case 'file_url': return onFileUrl(msg, fileUrl);
    case 'history': return onHistory(msg);
    case 'search': return onSearch(msg);
    case 'error': return onError(msg);
    case 'edit': case 'delete': case 'react': case 'unreact': return trackId(msg) && applyChange(msg);
    case 'slow_down':
      // Nothing is lost: the server reads this page's frames more slowly.
      return setNotice('info', 'You are sending faster than the server allows: your messages are delayed, not lost.');
    default: return undefined; // ignore what we do not know
  }
}

function onWelcome(msg) {
  const first = !state.everJoined;
  state.joined = true;
  state.attempt = 0;
  state.nameTakenRetries = 0;
  state.retryNameTaken = true;
  state.rejoining = false;
  state.offline = null;
  setJoining(false);
  if (typeof msg.name === 'string') state.name = msg.name;
  if (typeof msg.room === 'string') state.room = msg.room;
  setSelf(state.name);
  if (msg.limits) {
    state.limits = limitsFrom(msg);
    state.budget = new FrameBudget(state.limits);
    state.budget.take(); // our join
  }
  saved.set(STORE_NAME, state.name);
  saved.set(STORE_ROOM, state.room);
  saved.set(STORE_AUTO, '1');
  saveTab();
  renameOutbox(state.room, state.name);
  const reset = historyReset(msg, state.joinedWith);
  if (typeof msg.epoch === 'string') state.epoch = msg.epoch;
  // A page asked for on the connection before is not coming.
  setOlder({ loading: false });
  if (reset) {
    // The ids we have belong to a history the server no longer has: what
    // is shown goes, and the replay that follows is the room as it is now.
    resetLog();
    state.seenIds.clear();
    state.lastSeenId = null;
  }
  // Without `since` the server replays the newest events up to last_id; we
  // have then caught up with everything the room still holds.
  if (state.lastSeenId === null && Number.isInteger(msg.last_id)) state.lastSeenId = msg.last_id;
  // Whatever went wrong on the previous connection is over.
  clearToasts();
  state.notice = null;
  if (!first) {
    // Until the presence list that follows: who was here before the break.
    state.seenBefore = new Set(state.users.filter((u) => u !== state.name));
    state.quietUntil = Date.now() + REJOIN_QUIET_MS;
  }
  if (reset) addNote('The server has reset the history of #' + state.room + ': earlier messages are gone', 'reset');
  else if (!first) addNote('Reconnected', 'ok');
  state.everJoined = true;
  showChat();
  updateTitle(); // the room bar too: the server may spell the room its own way
  setStatus('online', 'Connected as ' + state.name);
  renderPresence();
  if (first && isShown()) input.focus();
  flushOutbox();
  pumpUploads();
}

/**
 * Whether the welcome `msg`, answering a join that resumed with `joinedWith`
 * ({since, epoch}), says the room's history is not the one we knew.
 */
function historyReset(msg, joinedWith) {
  // Nothing shown yet (since 0): a new history takes nothing away.
  if (!joinedWith || joinedWith.since === undefined || joinedWith.since === 0) return false;
  if (msg.recovered === false) return msg.reason === 'epoch';
  // A server that does not say, yet names another history.
  return msg.recovered === undefined && Boolean(joinedWith.epoch) && typeof msg.epoch === 'string'
    && msg.epoch !== joinedWith.epoch;
}

function onPresence(msg) {
  if (!Array.isArray(msg.users)) return;
  state.users = msg.users.filter((u) => typeof u === 'string');
  renderPresence();
}

function onJoin(msg) {
  if (typeof msg.name !== 'string') return;
  if (!state.users.includes(msg.name)) state.users.push(msg.name);
  renderPresence();
  // Someone who was here before this page's reconnect, back with theirs.
  const back = state.seenBefore.delete(msg.name) && Date.now() < state.quietUntil;
  if (!back) addNote(msg.name + ' joined', 'join', msg.ts);
}

function onLeave(msg) {
  if (typeof msg.name !== 'string') return;
  state.users = state.users.filter((u) => u !== msg.name);
  stopTyping(msg.name);
  renderPresence();
  addNote(msg.name + ' left', 'leave', msg.ts);
}

function onTyping(msg) {
  if (typeof msg.name !== 'string' || msg.name === state.name) return;
  clearTimeout(state.typists.get(msg.name));
  state.typists.set(msg.name, later(() => stopTyping(msg.name), TYPING_SHOW_MS));
  renderTyping();
}

function stopTyping(name) {
  if (!state.typists.has(name)) return;
  clearTimeout(state.typists.get(name));
  state.typists.delete(name);
  renderTyping();
}

function clearTypists() {
  for (const t of state.typists.values()) clearTimeout(t);
  state.typists.clear();
  renderTyping();
}

function onGap(msg) {
  const lost = Number(msg.first) - Number(msg.since) - 1;
  addNote(lost > 0
    ? lost + (lost === 1 ? ' message was' : ' messages were') + ' missed while you were away'
    : 'Some messages were missed while you were away', 'warn');
}

/** Learns a limit from a refusal's message ("…; the limit is N") when the welcome did not tell it. */
function learnLimit(key, text) {
  const m = /the limit is (\d+)/.exec(text);
  if (m) state.limits[key] = Number(m[1]);
}

function onError(msg) {
  const code = String(msg.code || 'error');
  const text = typeof msg.message === 'string' && msg.message ? msg.message : code.replace(/_/g, ' ');
  if (!state.joined && JOIN_ERRORS.has(code)) {
    if (code === 'name_taken' && state.retryNameTaken && state.nameTakenRetries < NAME_TAKEN_RETRIES) {
      // Our previous connection may not have been noticed as gone yet.
      state.nameTakenRetries++;
      state.rejoining = true;
      const ws = state.ws;
      state.ws = null;
      if (ws) ws.close(1000);
      scheduleReconnect();
      return;
    }
    refuseJoin(code, identityRefusal(msg, state.name, state.room) || text);
    return;
  }
  if (code === 'unavailable') {
    // The server could not reach the room's shared history just now.
    if (!state.joined) {
      joinAgainLater();
      return;
    }
    if (typeof msg.cid === 'string') {
      // Not stored, so not delivered to anyone: ours goes again, same cid.
      if (unstored(msg.cid)) retryLater();
      else if (uploadAwaits(msg.cid)) retryUpload(msg.cid, retryLater());
      // Otherwise it is settled already (its copy came meanwhile).
      return;
    }
    // An older page could not be read: the next scroll asks again.
    setOlder({ loading: false });
  }
  if (code === 'text_too_long' || code === 'empty_text') {
    // Which of ours it was: the errors carry no cid.
    if (code === 'text_too_long') learnLimit('text', text);
    restoreDraft(refused(code === 'empty_text'
      ? (x) => x.text.trim() === ''
      : (x) => utf8Length(x.text) > state.limits.text));
  }
  if (code === 'unexpected_binary' && state.swallowBinaryError) {
    state.swallowBinaryError = false;
    return;
  }
  switch (code) {
    case 'rate_limited':
      // An older page or a search asked too fast: scrollback.js asks again.
      return onRateLimited(msg);
    case 'no_such_file':
      // A history file's fresh URL was refused: its bubble says so itself.
      return failFileUrls();
    case 'text_too_long':
      learnLimit('text', text);
      return setNotice('error', 'Not sent: the message is too long. A message can be ' + formatLimit(state.limits.text)
        + ' (' + formatCount(state.limits.text) + ' bytes) at most; shorten it and send it again.');
    case 'empty_text':
      return setNotice('error', 'Not sent: a message needs some text.');
    case 'file_too_large':
      learnLimit('file', text);
      state.swallowBinaryError = true;
      failCurrentUpload('too large: a file can be ' + formatLimit(state.limits.file) + ' at most', (u) => u.size > state.limits.file);
      return undefined;
    case 'server_busy':
      state.swallowBinaryError = true;
      failCurrentUpload('the server is busy; share it again in a moment');
      return undefined;
    case 'size_mismatch':
    case 'unexpected_frame':
      failCurrentUpload('refused by the server (' + text + ')');
      return undefined;
    default:
      toast('The server refused a request: ' + text + '.');
      return undefined;
  }
}

function trackId(msg) {
  if (!Number.isInteger(msg.id)) return true;
  if (state.seenIds.has(msg.id)) return false;
  state.seenIds.add(msg.id);
  if (state.lastSeenId === null || msg.id > state.lastSeenId) state.lastSeenId = msg.id;
  return true;
}

/**
 * Whether `msg` is news the person has not seen: it came live, from
 * someone else, while the tab is hidden. The first such message since the
 * tab was last seen gets the "New since you left" divider above it.
 */
function arriving(msg, mine) {
  // A room not shown is not seen either, whether the tab is or not.
  const news = !msg.replay && !mine && (document.hidden || !isShown());
  if (news && state.unread === 0) markUnreadHere();
  return news;
}

/** Counts news in the title; a mention of us counts apart, and may notify. */
function countUnread(news, bubble, from, text) {
  if (!news) return;
  state.unread++;
  if (bubble.dataset.mentionsMe) {
    state.unreadMentions++;
    notifyMention(from, text);
  }
  updateTitle();
}

function onMessage(msg) {
  if (typeof msg.text !== 'string') return;
  const from = typeof msg.from === 'string' ? msg.from : '?';
  const mine = from === state.name;
  // Our own copy confirms what we sent (also when it comes again, as a
  // resend's answer or in a replay): it stops waiting in the outbox.
  if (mine && confirm(msg)) {
    updateComposer();
    storedAgain();
  }
  if (!trackId(msg)) return;
  if (!msg.replay) stopTyping(from);
  const news = arriving(msg, mine);
  const bubble = addTextBubble(msg, from, msg.text);
  decorate(bubble, msg);
  countUnread(news, bubble, from, msg.text);
}

function onFile(msg) {
  const from = typeof msg.from === 'string' ? msg.from : '?';
  const name = typeof msg.name === 'string' ? msg.name : 'file';
  const size = Number.isFinite(msg.size) ? msg.size : 0;
  const mime = typeof msg.mime === 'string' ? msg.mime : 'application/octet-stream';
  const mine = from === state.name;
  // Our own copy confirms a file we sent, as for messages (a resend's
  // answer, or the replay after a reconnect, confirms it too).
  const own = mine ? ownFileAnnounced(msg) : null;
  if (own) storedAgain();
  if (!trackId(msg)) return;
  if (!msg.replay) stopTyping(from);
  const news = arriving(msg, mine);
  const record = addFileBubble(msg, from, name, size, mime);
  countUnread(news, record.bubble, from, '');
  if (own) {
    renderFileReady(record, own);
  } else if (msg.replay) {
    // History: the server keeps the bytes at `url`, or no longer has them.
    const url = msg.available === false ? '' : fileUrl(msg.url);
    if (url) renderFileRemote(record, url);
    else renderFileUnavailable(record, 'No longer available');
  } else if (mine) {
    renderFileUnavailable(record, 'Sent from another session');
  } else {
    renderFilePending(record);
    state.pendingBinary = record;
  }
}

/**
 * A page of older history (scrollback.js asked for it): drawn above what
 * is shown, each event as a replay is; any already shown is not drawn again.
 */
function onHistory(msg) {
  if (!Array.isArray(msg.events)) return;
  addOlder(() => {
    for (const ev of msg.events) {
      if (!ev || ev.replay !== true) continue;
      if (ev.type === 'message') onMessage(ev);
      else if (ev.type === 'file') onFile(ev);
    }
  });
  olderArrived(msg);
}

export function handleBinary(data) {
  const record = state.pendingBinary;
  state.pendingBinary = null;
  if (!record) return; // bytes we did not expect: ignore
  renderFileReady(record, new Blob([data]));
}

/** The socket closed (connection.js has cleared state.ws and state.joined). */
export function onClose(ev, opened, wasJoined) {
  // Whatever the server has not confirmed goes again on the next connection.
  clearTimeout(state.flushTimer);
  state.flushTimer = null;
  requeue();
  requeueUploads();
  clearTypists();
  renderPresence();
  if (!state.wanted) return;
  const removed = removedBy(ev, state.name, state.room);
  if (removed) {
    // A moderator's doing: no reconnecting, and the person is told.
    refuseJoin('removed', removed);
    return;
  }
  if (!wasJoined && !state.everJoined && !state.retryNameTaken && !comeBack(ev)) {
    // A join that never got in: say so on the form.
    joinFailed(ev.code === 1008 && ev.reason
      ? 'The server refused to let you in: ' + ev.reason + '.'
      : 'Could not reach the chat server. Check your connection and press Join to try again.');
    return;
  }
  state.rejoining = false;
  state.offline = describeClose(ev, opened);
  scheduleReconnect();
}
