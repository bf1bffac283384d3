// The people list. On wide screens it sits beside the conversation; on
// narrow ones it is a panel over it, opened from the header, that behaves as
// a modal dialog: a backdrop, a close button, Escape, focus kept inside
// while it is open and given back to where it was when it closes.
import { $ } from './util.js';

const narrow = window.matchMedia('(max-width: 760px)');
const sidebar = $('sidebar');
const toggle = $('people-toggle');
const closeButton = $('people-close');
const backdrop = $('panel-backdrop');
// Everything else on the chat screen, made inert while the panel is open.
const behind = [document.querySelector('.topbar'), $('room-bar'), document.querySelector('.conversation')];
let returnFocus = null;

export function peopleOpen() {
  return sidebar.classList.contains('open');
}

export function openPeople() {
  if (!narrow.matches || peopleOpen()) return;
  returnFocus = document.activeElement;
  sidebar.classList.add('open');
  sidebar.setAttribute('role', 'dialog');
  sidebar.setAttribute('aria-modal', 'true');
  backdrop.hidden = false;
  for (const node of behind) node.inert = true;
  toggle.setAttribute('aria-expanded', 'true');
  closeButton.focus();
}

export function closePeople({ restoreFocus = true } = {}) {
  if (!peopleOpen()) return;
  sidebar.classList.remove('open');
  sidebar.setAttribute('role', 'complementary');
  sidebar.removeAttribute('aria-modal');
  backdrop.hidden = true;
  for (const node of behind) node.inert = false;
  toggle.setAttribute('aria-expanded', 'false');
  const back = returnFocus && returnFocus.isConnected && returnFocus !== document.body ? returnFocus : toggle;
  returnFocus = null;
  if (restoreFocus) back.focus();
}

toggle.addEventListener('click', () => (peopleOpen() ? closePeople() : openPeople()));
closeButton.addEventListener('click', () => closePeople());
backdrop.addEventListener('click', () => closePeople());

document.addEventListener('keydown', (e) => {
  if (!peopleOpen()) return;
  if (e.key === 'Escape') {
    e.preventDefault();
    closePeople();
  } else if (e.key === 'Tab') {
    // Keep Tab and Shift+Tab cycling inside the panel.
    const inside = Array.from(sidebar.querySelectorAll('button, a[href], [tabindex]:not([tabindex="-1"])'))
      .filter((n) => !n.disabled && n.getClientRects().length > 0);
    if (inside.length === 0) return;
    const first = inside[0];
    const last = inside[inside.length - 1];
    if (!sidebar.contains(document.activeElement)) {
      e.preventDefault();
      first.focus();
    } else if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  }
});

// Widening the window turns the panel back into the sidebar.
narrow.addEventListener('change', () => {
  if (!narrow.matches) closePeople({ restoreFocus: false });
});
