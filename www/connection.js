// The WebSocket to /ws: opening it and sending the join, sending frames
// within the server's limits, and reconnecting with backoff (a countdown in
// the status line, "Reconnect now", the browser coming back online). What
// arrives on it, and its end, go to the handlers given by app.js.
import { $, utf8Length } from './util.js';
import { FrameBudget } from './limits.js';
import { browserKey, heldToken } from './identity.js';
import {
  state, online, later, every, within, session, rooms,
} from './state.js';

const PROTOCOL = 'wschat.v1';
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;

const reconnectButton = $('reconnect-now');
const input = $('message-input');

/**
 * Where the socket reports, given by app.js:
 *   event(msg)                        a JSON event from the server
 *   binary(data)                      a binary frame (a file's bytes), as an ArrayBuffer
 *   closed(ev, opened, wasJoined)     the socket closed; state.ws and state.joined are already cleared
 *   status(kind, label, detail)       the status line to show while connecting or waiting to retry
 *   composer()                        the composer to be drawn again (the device went offline)
 * (So this module needs nothing of the view, which needs the socket.)
 */
let handlers = null;

export function onConnection(h) {
  handlers = h;
}

/** Why the connection ended, in words: `short` for the status line, `why` for a sentence. */
export function describeClose(ev, opened) {
  if (!navigator.onLine) return { short: 'Offline', why: 'this device has no network connection' };
  if (!opened) return state.offline || { short: 'Offline', why: 'the chat server cannot be reached' };
  const reason = ev.reason || '';
  switch (ev.code) {
    case 1001:
      // A stop promises nothing: the operator may or may not start it again.
      if (reason === 'server shutting down') return { short: 'Server stopped', why: 'the chat server has shut down; this page keeps trying in case it comes back' };
      if (reason === 'ping timeout') return { short: 'Connection lost', why: 'the server stopped hearing from this page' };
      break;
    case 1008:
      if (reason === 'too many errors') return { short: 'Disconnected: refused too often', why: 'the server disconnected this page after refusing too many of its requests, and lets it back in after a short wait' };
      if (reason === 'too slow') return { short: 'Disconnected: too slow', why: 'this connection could not keep up with the room' };
      break;
    case 1009:
      return { short: 'Disconnected: too large', why: 'the server refused something this page sent as too large' };
    case 1011:
      return { short: 'Server error', why: 'the chat server hit an internal error' };
    case 1012:
      if (reason === 'server restarting') return { short: 'Server restarting', why: 'the chat server is restarting; this page reconnects as soon as it is back' };
      return { short: 'History reset', why: 'the chat server lost the history of this room and asked this page to come back' };
    case 1013:
      return { short: 'Server busy', why: 'the chat server asked this page to try again in a moment' };
    default:
      break;
  }
  if (reason) return { short: 'Disconnected', why: 'the server closed the connection (' + reason + ')' };
  return { short: 'Offline', why: 'the connection to the chat server was lost' };
}

function wsUrl() {
  return (location.protocol === 'https:' ? 'wss' : 'ws') + '://' + location.host + '/ws';
}

export function connect() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  state.reconnectTimer = null;
  if (!state.wanted) return;
  state.joined = false;
  state.pendingBinary = null;
  if (state.rejoining) handlers.status('connecting', 'Rejoining…');
  else handlers.status('connecting', state.everJoined ? 'Reconnecting…' : 'Connecting…');

  let ws;
  try {
    ws = new WebSocket(wsUrl(), PROTOCOL);
  } catch (e) {
    scheduleReconnect();
    return;
  }
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  let opened = false;
  // Each room has a socket of its own: what happens on it acts on its room.
  const s = session();

  ws.addEventListener('open', () => within(s, () => {
    if (state.ws !== ws) return;
    opened = true;
    state.budget = new FrameBudget(state.limits);
    const join = { type: 'join', room: state.room, name: state.name, key: browserKey() };
    const token = heldToken();
    if (token) join.token = token;
    // Resuming: the newest id shown, and the history it belongs to.
    if (state.lastSeenId !== null) {
      join.since = state.lastSeenId;
      if (state.epoch) join.epoch = state.epoch;
    }
    state.joinedWith = { since: join.since, epoch: join.epoch };
    sendFrame(join);
  }));
  ws.addEventListener('message', (ev) => within(s, () => {
    if (state.ws !== ws) return;
    if (typeof ev.data === 'string') {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_) { return; }
      if (msg && typeof msg === 'object') handlers.event(msg);
    } else {
      handlers.binary(ev.data);
    }
  }));
  ws.addEventListener('close', (ev) => within(s, () => {
    if (state.ws !== ws) return;
    state.ws = null;
    const wasJoined = state.joined;
    state.joined = false;
    handlers.closed(ev, opened, wasJoined);
  }));
}

/**
 * Whether a close asks the page to come back (1012: the server is
 * restarting, or restarted the room's history; 1013: try again later): it
 * reconnects even when its join never got in.
 */
export function comeBack(ev) {
  return ev.code === 1012 || ev.code === 1013;
}

/**
 * The server could not reach the room for this join (`unavailable`): this
 * socket is given up and a new one tries again after the backoff.
 */
export function joinAgainLater() {
  const ws = state.ws;
  state.ws = null;
  state.joined = false;
  if (ws) ws.close(1000);
  state.offline = { short: 'Room unavailable', why: 'the chat server cannot reach this room just now' };
  scheduleReconnect();
}

export function scheduleReconnect() {
  if (!state.wanted) return;
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, state.attempt));
  const delay = Math.round(base / 2 + Math.random() * base / 2);
  state.attempt++;
  const due = Date.now() + delay;
  const [kind, label] = state.rejoining
    ? ['connecting', 'Rejoining']
    : ['offline', (state.offline || { short: 'Offline' }).short];
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = later(connect, delay);
  const tick = () => {
    const s = Math.max(0, Math.ceil((due - Date.now()) / 1000));
    handlers.status(kind, label, s > 0 ? ' · retrying in ' + s + 's' : ' · retrying…');
  };
  tick();
  clearInterval(state.countdownTimer);
  state.countdownTimer = every(tick, 1000);
}

/** Skips the wait before the next attempt, if one is waiting. */
export function reconnectNow() {
  if (state.wanted && !state.ws && state.reconnectTimer) {
    state.attempt = 0;
    connect();
  }
}

/** No more attempts: stops the reconnect timer and closes the socket, if any. */
export function stopConnecting() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  state.reconnectTimer = null;
  const ws = state.ws;
  state.ws = null;
  state.joined = false;
  if (ws) ws.close(1000);
}

/**
 * Sends one JSON frame if the server will take it: connected, within the
 * largest text frame and within the rate. Returns '' when sent, otherwise
 * why not: 'offline', 'size' or 'rate'.
 */
export function sendFrame(obj, frames = 1) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return 'offline';
  const json = JSON.stringify(obj);
  if (utf8Length(json) > state.limits.message) return 'size';
  if (!state.budget.take(frames)) return 'rate';
  ws.send(json);
  return '';
}

/** `reconnectNow` for every room this tab is in. */
export function reconnectAll() {
  for (const s of rooms) within(s, reconnectNow);
}

window.addEventListener('online', reconnectAll);
window.addEventListener('offline', () => {
  for (const s of rooms) {
    within(s, () => {
      if (state.wanted && !online() && state.offline) {
        state.offline = { short: 'Offline', why: 'this device has no network connection' };
        handlers.composer();
      }
    });
  }
});
reconnectButton.addEventListener('click', () => {
  reconnectNow();
  input.focus();
});
