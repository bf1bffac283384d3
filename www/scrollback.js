// Reading a room further back, and finding its messages: asking the server
// for the page above the oldest message shown (`history`, when the list is
// scrolled to its top or "Load older messages" is pressed), and the search
// box (`search`), whose results lead to their message, loading older pages
// until it is shown. The pages themselves are drawn by events.js through
// log.js (addOlder).
import {
  $, el, formatTime, dayKey, dayLabel,
} from './util.js';
import {
  online, perRoom, session, within, shownRoom, later,
} from './state.js';
import { sendFrame } from './connection.js';
import {
  onLoadOlder, olderWanted, olderState, setOlder, oldestShownId, bubbleOf, revealMessage,
} from './log.js';

const PAGE = 50; // messages per page while scrolling back
const SEEK_PAGE = 100; // per page while looking for a search result (the server's most)
const RESULTS = 20;

const searchForm = $('search');
const searchInput = $('search-input');
const searchBox = $('search-results');
const searchStatus = $('search-status');
const searchList = $('search-list');

// Per room: the message being looked for (a search result clicked), and a
// request to send again once the server allows.
const back = perRoom('scrollback', () => ({ seek: 0, retry: null }));

/** Asks for the page above the oldest message shown, unless one is on its way or none is left. */
export function loadOlder() {
  if (!olderWanted() || !online()) return;
  const frame = { type: 'history', limit: back.seek ? SEEK_PAGE : PAGE };
  const before = oldestShownId();
  if (before) frame.before = before;
  const sent = sendFrame(frame);
  if (sent === 'rate' && back.seek) {
    // Over the page's own rate while looking for a result: ask again soon.
    retryIn(500);
    return;
  }
  if (sent !== '') return; // otherwise the next scroll asks again
  setOlder({ loading: true });
}

function retryIn(ms) {
  if (back.retry) return;
  back.retry = later(() => {
    back.retry = null;
    loadOlder();
  }, ms);
}

onLoadOlder(loadOlder);

/** A page came (events.js has drawn it): `complete` says nothing older is kept. */
export function olderArrived(msg) {
  setOlder({ loading: false, done: msg.complete === true });
  if (back.seek) seek(back.seek);
}

/**
 * The server refused a `history` or `search` for coming too fast: a page
 * being looked through is asked for again when it says.
 */
export function onRateLimited(msg) {
  const wait = Math.max(100, Math.min(10000, Number(msg.until) - Date.now() || 1000));
  setOlder({ loading: false });
  if (searchStatus.dataset.pending === 'true') {
    searchStatus.dataset.pending = 'false';
    searchStatus.textContent = 'Too many searches at once: try again in a moment.';
  }
  if (back.seek) retryIn(wait);
}

// ------------------------------------------------------------------ search

// Emptying the box (its clear button, Escape) puts the results away.
searchInput.addEventListener('input', () => {
  if (searchInput.value !== '') return;
  searchBox.hidden = true;
  searchList.replaceChildren();
  delete searchList.dataset.q;
});

searchForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = searchInput.value.trim();
  if (!q) return;
  searchBox.hidden = false;
  searchList.replaceChildren();
  searchList.dataset.q = q;
  const sent = online() ? sendFrame({ type: 'search', q, limit: RESULTS }) : 'offline';
  searchStatus.dataset.pending = sent === '' ? 'true' : 'false';
  searchStatus.textContent = sent === '' ? 'Searching…'
    : sent === 'offline' ? 'Not connected: search again once the room is back.'
      : 'Too many requests at once: try again in a moment.';
});

/** The answer to our search: its results, newest first, each leading to its message. */
export function onSearch(msg) {
  if (!Array.isArray(msg.results) || msg.q !== searchList.dataset.q || session() !== shownRoom()) return;
  searchStatus.dataset.pending = 'false';
  const room = session();
  const n = msg.results.length;
  searchStatus.textContent = n === 0 ? 'No messages found.'
    : n + (n === 1 ? ' message found' : ' messages found') + ', newest first.';
  searchList.replaceChildren(...msg.results
    .filter((r) => Number.isInteger(r.id) && typeof r.text === 'string')
    .map((r) => {
      const from = typeof r.from === 'string' ? r.from : '?';
      const ts = Number.isFinite(r.ts) ? r.ts : 0;
      const button = el('button', {
        class: 'search-result', type: 'button', 'data-testid': 'search-result', 'data-id': r.id,
      },
      el('span', { class: 'search-from', text: from }),
      el('time', {
        class: 'time', datetime: new Date(ts).toISOString(), title: new Date(ts).toLocaleString(), text: when(ts),
      }),
      el('span', { class: 'search-text', text: r.text }));
      button.addEventListener('click', () => {
        if (room !== shownRoom()) {
          searchStatus.textContent = 'That result is from another room: show it to go to the message.';
          return;
        }
        within(room, () => seek(r.id));
      });
      return el('li', {}, button);
    }));
}

/** A result's time: the day too, unless it is today. */
function when(ts) {
  return dayKey(ts) === dayKey(Date.now()) ? formatTime(ts) : dayLabel(ts) + ', ' + formatTime(ts);
}

/** Shows message `id`, loading older pages until it is in the list (or nothing older is left). */
function seek(id) {
  if (bubbleOf(id)) {
    back.seek = 0;
    revealMessage(id);
    return;
  }
  const { done, loading } = olderState();
  if (done) {
    back.seek = 0;
    searchStatus.textContent = 'That message is no longer kept.';
    return;
  }
  back.seek = id;
  if (!loading) loadOlder();
}
