// The page's sessions, one per room this tab is in: who it is there, how
// far its connection has got and what the room has shown it. `state` is the
// session being acted on (the room shown, or the room whose socket, event or
// timer is being handled), read and changed by the modules that need it;
// nothing here touches the page.
import { DEFAULT_LIMITS, FrameBudget } from './limits.js';

export const STORE_NAME = 'wschat.name';
export const STORE_ROOM = 'wschat.room';
export const STORE_AUTO = 'wschat.auto'; // '1' while the user has not pressed Leave
export const TAB_JOINED = 'wschat.joined'; // this tab's rooms, [{room, name, shown}], while in any; survives reloads only

/** A room's own session: everything below is kept for each room this tab is in. */
export function newSession() {
  return {
    ws: null,
    name: '', // name as confirmed by the server's welcome (trimmed form)
    room: '',
    how: 'typed', // how this join started: 'typed' on the form, 'reload' of this tab, 'auto' in a new tab
    wanted: false, // user wants to be connected (false after Leave)
    joining: false, // the join form has been sent and awaits the server
    joined: false, // welcome received on the current socket
    everJoined: false, // at least one welcome in this session of the room
    retryNameTaken: false, // treat name_taken as our own stale connection (reconnect, reload)
    rejoining: false, // waiting for the server to let go of our old connection's name
    offline: null, // while disconnected after a join: {short, why} in words
    notice: null, // a refusal to show above the composer: {kind, text}; cleared by typing
    swallowBinaryError: false, // a refused file announcement makes its bytes unexpected too
    lastSeenId: null, // newest event id seen; sent as `since` on reconnect
    epoch: null, // the room's history those ids belong to (from the welcome); sent with `since`
    joinedWith: null, // {since, epoch} of the current connection's join
    seenIds: new Set(),
    attempt: 0,
    nameTakenRetries: 0,
    reconnectTimer: null,
    countdownTimer: null,
    flushTimer: null, // sends the outbox once the rate allows
    storeTrouble: false, // the server could not store a message of ours and has not stored one since
    retryTimer: null, // while set, the outbox waits: the server could not store a message (composer.js retryLater)
    retryDelay: 0, // the last such pause, in ms; doubles while it goes on
    pendingBinary: null, // live file event from someone else, awaiting its bytes
    users: [],
    // After a reconnect: who the page last saw here, and until when their
    // joins are them coming back with it (a server restart), not news.
    seenBefore: new Set(),
    quietUntil: 0,
    typists: new Map(), // name -> expiry timer
    lastTypingSent: 0,
    unread: 0, // messages that came while the tab was hidden
    unreadMentions: 0, // of those, the ones that mention us
    limits: { ...DEFAULT_LIMITS }, // from the newest welcome that had them
    budget: new FrameBudget(DEFAULT_LIMITS), // frames we may still send on this socket
    status: ['connecting', 'Connecting…', ''], // the status line's kind, text and countdown
    view: {}, // what the page's modules keep for this room (log.js, outbox.js, uploads.js)
  };
}

// The rooms this tab is in, in the order they were joined; the one shown;
// and the one being acted on, which is the shown one except while an event,
// a timer or a socket of another room is being handled (`within`).
export const rooms = [];
let shownSession = newSession();
let current = shownSession;

/** The session being acted on: `state.x` reads and writes its `x`. */
export const state = new Proxy({}, {
  get: (_, key) => current[key],
  set: (_, key, value) => {
    current[key] = value;
    return true;
  },
});

/** The session being acted on, itself (to hand to `within` later). */
export function session() {
  return current;
}

/** Whether the session acted on is the one on screen. */
export function isShown() {
  return current === shownSession;
}

export function shownRoom() {
  return shownSession;
}

/** Puts `s` on screen (and acts on it from now on). */
export function showSession(s) {
  shownSession = s;
  current = s;
}

/** Runs `fn` acting on session `s`, then goes back to the one shown. */
export function within(s, fn) {
  const before = current;
  const wasShown = before === shownSession;
  current = s;
  try {
    return fn();
  } finally {
    current = wasShown ? shownSession : before;
  }
}

/** setTimeout for the session acted on now: `fn` runs acting on it. */
export function later(fn, ms) {
  const s = current;
  return setTimeout(() => within(s, fn), ms);
}

/** setInterval, as `later`. */
export function every(fn, ms) {
  const s = current;
  return setInterval(() => within(s, fn), ms);
}

/** Per-room store of a module: `key` of the session acted on, made by `make` the first time. */
export function perRoom(key, make) {
  return new Proxy({}, {
    get: (_, k) => {
      if (!(key in current.view)) current.view[key] = make();
      return current.view[key][k];
    },
    set: (_, k, v) => {
      if (!(key in current.view)) current.view[key] = make();
      current.view[key][k] = v;
      return true;
    },
  });
}

/** Joined, on a socket that is open. */
export function online() {
  return state.joined && state.ws !== null && state.ws.readyState === WebSocket.OPEN;
}
