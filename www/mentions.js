// @mentions: completing a name from the people in the room while typing
// (a list box under the text box's control: Up and Down choose, Tab or
// Enter accept, Escape closes), and a desktop notification when someone
// mentions us while the tab is hidden, once the person has asked for it
// with "Notify me when mentioned" (the browser asks for permission only
// then, never on load).
import { $, el, saved } from './util.js';
import { state } from './state.js';

export const STORE_NOTIFY = 'wschat.notify'; // '1' when the person asked to be notified of mentions
const MAX_OPTIONS = 8;
const NOTE_TEXT_MAX = 140;

const composer = $('composer');
const input = $('message-input');
const list = $('mention-list');
const listStatus = $('mention-status');
const notifyBox = $('notify-mentions');
const notifyNote = $('notify-note');

// ------------------------------------------------------------- completion

const completion = {
  open: false,
  start: 0, // where the "@" being completed is in the text box
  end: 0, // the caret
  names: [],
  active: 0,
};

/** The "@prefix" just before the caret, if any: {start, prefix}. */
function mentionBeforeCaret() {
  if (input.selectionStart !== input.selectionEnd) return null;
  const before = input.value.slice(0, input.selectionStart);
  const m = /(?:^|[^\p{L}\p{N}_])@([^\s@]{0,32})$/u.exec(before);
  if (!m) return null;
  return { start: before.length - m[1].length - 1, prefix: m[1] };
}

function close() {
  if (!completion.open) return;
  completion.open = false;
  list.hidden = true;
  list.replaceChildren();
  input.removeAttribute('aria-activedescendant');
  listStatus.textContent = '';
}

function showActive() {
  list.querySelectorAll('[role="option"]').forEach((li, i) => {
    li.setAttribute('aria-selected', i === completion.active ? 'true' : 'false');
  });
  input.setAttribute('aria-activedescendant', 'mention-option-' + completion.active);
}

function update() {
  const at = mentionBeforeCaret();
  if (!at) {
    close();
    return;
  }
  const prefix = at.prefix.toLowerCase();
  const names = state.users
    .filter((u) => u !== state.name && u.toLowerCase().startsWith(prefix))
    .sort((a, b) => a.localeCompare(b))
    .slice(0, MAX_OPTIONS);
  if (names.length === 0) {
    close();
    return;
  }
  const same = completion.open && names.join('\n') === completion.names.join('\n');
  completion.open = true;
  completion.start = at.start;
  completion.end = input.selectionStart;
  if (!same) {
    completion.names = names;
    completion.active = 0;
    list.replaceChildren(...names.map((name, i) => {
      const li = el('li', {
        id: 'mention-option-' + i, role: 'option', class: 'mention-option', 'data-testid': 'mention-option', 'data-name': name,
      }, '@' + name);
      // Pressing an option must not take the focus from the text box.
      li.addEventListener('mousedown', (e) => e.preventDefault());
      li.addEventListener('click', () => accept(i));
      return li;
    }));
    listStatus.textContent = (names.length === 1 ? '1 person' : names.length + ' people')
      + ' to mention: Up and Down to choose, Tab or Enter to accept, Escape to close.';
  }
  list.hidden = false;
  showActive();
}

function accept(i) {
  const name = completion.names[i];
  if (name === undefined) return;
  const text = input.value;
  const insert = '@' + name + ' ';
  input.value = text.slice(0, completion.start) + insert + text.slice(completion.end);
  const caret = completion.start + insert.length;
  input.setSelectionRange(caret, caret);
  close();
  // The composer sees the change as typing (its counter, its height).
  input.dispatchEvent(new Event('input', { bubbles: true }));
  input.focus();
}

input.addEventListener('input', update);
input.addEventListener('click', update);
input.addEventListener('blur', close);
input.addEventListener('keyup', (e) => {
  if (e.key === 'ArrowLeft' || e.key === 'ArrowRight' || e.key === 'Home' || e.key === 'End') update();
});

// Caught on the way down to the text box, so that Enter accepts a name
// rather than sending the message (composer.js listens on the text box).
composer.addEventListener('keydown', (e) => {
  if (!completion.open || e.target !== input || e.isComposing) return;
  const n = completion.names.length;
  let handled = true;
  if (e.key === 'ArrowDown') {
    completion.active = (completion.active + 1) % n;
    showActive();
  } else if (e.key === 'ArrowUp') {
    completion.active = (completion.active + n - 1) % n;
    showActive();
  } else if ((e.key === 'Tab' || e.key === 'Enter') && !e.shiftKey) {
    accept(completion.active);
  } else if (e.key === 'Escape') {
    close();
  } else {
    handled = false;
  }
  if (handled) {
    e.preventDefault();
    e.stopPropagation();
  }
}, true);

// ---------------------------------------------------------- notifications

function notifySupported() {
  return typeof window.Notification === 'function';
}

function showNotifyState() {
  const supported = notifySupported();
  const permission = supported ? Notification.permission : 'denied';
  notifyBox.disabled = !supported;
  notifyBox.checked = supported && saved.get(STORE_NOTIFY) === '1' && permission === 'granted';
  let note = '';
  if (!supported) note = 'This browser cannot show notifications.';
  else if (permission === 'denied') note = 'Notifications are blocked for this page in the browser’s settings.';
  notifyNote.textContent = note;
  notifyNote.hidden = note === '';
}

notifyBox.addEventListener('change', async () => {
  if (!notifyBox.checked) {
    saved.set(STORE_NOTIFY, '0');
    showNotifyState();
    return;
  }
  saved.set(STORE_NOTIFY, '1');
  if (Notification.permission === 'default') {
    try {
      await Notification.requestPermission();
    } catch (_) { /* answered as "denied" below */ }
  }
  if (Notification.permission !== 'granted') saved.set(STORE_NOTIFY, '0');
  showNotifyState();
});

showNotifyState();

/** `from` mentioned us in `text`: a desktop notification, if asked for and the tab is hidden. */
export function notifyMention(from, text) {
  if (!document.hidden || !notifySupported() || Notification.permission !== 'granted') return;
  if (saved.get(STORE_NOTIFY) !== '1') return;
  const body = Array.from(text).length > NOTE_TEXT_MAX ? Array.from(text).slice(0, NOTE_TEXT_MAX - 1).join('') + '…' : text;
  try {
    const note = new Notification(from + ' mentioned you in #' + state.room, { body, tag: 'wschat-mention-' + state.room });
    note.addEventListener('click', () => {
      window.focus();
      note.close();
    });
  } catch (_) { /* some browsers allow notifications only from a service worker */ }
}
