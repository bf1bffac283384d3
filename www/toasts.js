// Short-lived messages in the corner: refusals and errors that belong to no
// field. Each can be dismissed; at most four are kept.
import { $, el } from './util.js';

const toasts = $('toasts');
const chatScreen = $('chat-screen');
const joinName = $('join-name');
const input = $('message-input');

export function toast(text, kind) {
  const node = el('div', { class: 'toast toast-' + (kind || 'error'), role: 'alert', 'data-testid': 'error' });
  node.append(el('span', { class: 'toast-text', text }));
  const close = el('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  close.addEventListener('click', () => {
    const hadFocus = node.contains(document.activeElement);
    node.remove();
    // Focus does not fall to the page's start: it goes back to typing.
    if (hadFocus) (chatScreen.hidden ? joinName : input).focus();
  });
  node.append(close);
  toasts.append(node);
  setTimeout(() => node.remove(), 7000);
  while (toasts.children.length > 4) toasts.firstElementChild.remove();
}

export function clearToasts() {
  toasts.replaceChildren();
}

/** Puts away the newest toast, if there is one. */
export function dismissNewest() {
  if (toasts.lastElementChild) toasts.lastElementChild.remove();
}
