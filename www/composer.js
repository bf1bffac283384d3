// Sending messages: the text box (Enter sends, Shift+Enter is a new line,
// it grows with its text), refusing before sending what the server would
// refuse, sending at once when it can and otherwise leaving the message in
// the outbox (outbox.js) to go in its turn, and telling the room when this
// person is typing.
import { $, utf8Length, formatLimit } from './util.js';
import {
  unsent, inFlight, addSent, enqueue, flush, dropFirstUnsent, newCid,
} from './outbox.js';
import { state, online, later } from './state.js';
import { setNotice, textTooLong, updateComposer } from './view.js';
import { sendFrame } from './connection.js';

const TYPING_SEND_EVERY_MS = 2000; // protocol: at most every 2 seconds
const RETRY_MIN_MS = 1000; // first pause after the server could not store a message
const RETRY_MAX_MS = 8000; // longest pause between tries

const composer = $('composer');
const input = $('message-input');

function autoGrow() {
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight, 160) + 'px';
}

/** Puts `text` back in the composer, unless something else is being typed there. */
export function restoreDraft(text) {
  if (text !== null && input.value === '') {
    input.value = text;
    autoGrow();
  }
}

function frameTooLarge() {
  setNotice('error', 'Too long to send: a message and its markup can be ' + formatLimit(state.limits.message) + ' at most. Shorten it or split it in two.');
}

/**
 * Sends what waits in the outbox, as far as the connection and the rate
 * allow; while the server cannot store messages (see `retryLater`), only
 * after the pause, and one at a time.
 */
export function flushOutbox() {
  clearTimeout(state.flushTimer);
  state.flushTimer = null;
  if (!online() || state.retryTimer) return;
  const max = state.storeTrouble ? Math.max(0, 1 - inFlight()) : Infinity;
  const why = flush((frame) => (utf8Length(frame.text) > state.limits.text ? 'size' : sendFrame(frame)), max);
  if (why === 'rate') {
    state.flushTimer = later(flushOutbox, Math.max(50, state.budget.wait()));
  } else if (why === 'size') {
    // Kept from before the server said it takes less: back to the composer.
    restoreDraft(dropFirstUnsent());
    frameTooLarge();
    flushOutbox();
  }
}

/**
 * The server could not store what we sent (error `unavailable`: its
 * history is out of reach for now). What waits goes again after a pause,
 * longer each time this happens in a row, and then one message at a time
 * until the server stores one again (`storedAgain`): the same `cid` each
 * time, so nothing is ever stored twice. Returns the pause, in ms.
 */
export function retryLater() {
  state.storeTrouble = true;
  state.retryDelay = Math.min(RETRY_MAX_MS, state.retryDelay ? state.retryDelay * 2 : RETRY_MIN_MS);
  clearTimeout(state.retryTimer);
  state.retryTimer = later(() => {
    state.retryTimer = null;
    flushOutbox();
  }, state.retryDelay);
  updateComposer();
  return state.retryDelay;
}

/** The server stored something of ours: what waits goes at once again. */
export function storedAgain() {
  if (!state.storeTrouble) return;
  state.storeTrouble = false;
  state.retryDelay = 0;
  updateComposer();
  flushOutbox();
}

/** Forgets the pauses of `retryLater` (a new conversation). */
export function stopRetrying() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  state.storeTrouble = false;
  state.retryDelay = 0;
}

function sendMessage() {
  const text = input.value;
  if (text.trim() === '') return;
  const over = utf8Length(text) - state.limits.text;
  if (over > 0) {
    setNotice('error', textTooLong(over));
    return;
  }
  const cid = newCid();
  if (utf8Length(JSON.stringify({ type: 'message', text, cid })) > state.limits.message) {
    frameTooLarge();
    return;
  }
  if (online() && unsent() === 0 && !state.storeTrouble) {
    const why = sendFrame({ type: 'message', text, cid });
    if (why === 'size') {
      frameTooLarge();
      return;
    }
    if (why === 'rate') {
      setNotice('error', 'Not sent: you are sending faster than the server allows (' + state.limits.rate + ' messages a second). Wait a moment, then press Enter again.');
      return;
    }
    addSent(cid, text);
  } else {
    // No connection (or others still waiting before it): it waits, shown
    // as not sent, and goes in its turn.
    enqueue(text, state.storeTrouble ? 'retrying' : 'queued');
    flushOutbox();
  }
  input.value = '';
  state.notice = null;
  autoGrow();
  updateComposer();
  state.lastTypingSent = 0;
}

composer.addEventListener('submit', (e) => {
  e.preventDefault();
  sendMessage();
  input.focus();
});

input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    sendMessage();
  }
});

input.addEventListener('input', () => {
  autoGrow();
  state.notice = null;
  updateComposer();
  const now = Date.now();
  if (input.value.trim() !== '' && online() && now - state.lastTypingSent >= TYPING_SEND_EVERY_MS) {
    // Typing news is worth no more than a message: never spend the last of the rate on it.
    if (state.budget.wait(5) === 0 && sendFrame({ type: 'typing' }) === '') state.lastTypingSent = now;
  }
});
