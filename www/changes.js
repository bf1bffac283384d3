// Editing, deleting and reacting to messages (docs/PROTOCOL.md, "Changing a
// message"): each text bubble gets "Edit", "Delete" (our own, or anyone's
// with a moderator's sign-in link) and "React" buttons, shown while it is hovered or holds the focus; an edited message
// says so, a deleted one says "Message deleted", and its reactions show
// with their counts, ours pressed. The server's events change the bubble;
// applying one twice (a replay after a resume) changes nothing more.
import { el, utf8Length } from './util.js';
import { renderMarkdown } from './markdown.js';
import { bubbleById } from './log.js';
import { sendFrame } from './connection.js';
import { state } from './state.js';
import { toast } from './toasts.js';
import { heldByModerator } from './identity.js';

/** The reactions offered first; the server takes any one emoji. */
export const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

// What each text bubble shows: {id, text, edited, deleted, reactions: Map emoji → names}.
const shown = new WeakMap();

/** Gives a text bubble its state (from a message event) and its buttons. */
export function decorate(bubble, msg) {
  if (!bubble || !Number.isInteger(msg.id)) return;
  const reactions = new Map();
  if (msg.reactions && typeof msg.reactions === 'object') {
    for (const [emoji, names] of Object.entries(msg.reactions)) {
      if (Array.isArray(names)) reactions.set(emoji, names.filter((n) => typeof n === 'string'));
    }
  }
  // `drawn`: the text the bubble shows as log.js drew it (with its mentions), until it changes.
  shown.set(bubble, {
    id: msg.id, text: msg.text, drawn: msg.text, edited: !!msg.edited, deleted: !!msg.deleted, reactions,
  });
  const time = bubble.querySelector('time');
  bubble.insertBefore(el('span', { class: 'edited-mark', 'data-testid': 'edited-mark', text: '(edited)' }), time);
  bubble.append(el('div', { class: 'reactions', 'data-testid': 'reactions' }));
  bubble.append(el('div', { class: 'message-actions', 'data-testid': 'message-actions' }));
  render(bubble);
}

/** An `edit`, `delete`, `react` or `unreact` event. */
export function applyChange(msg) {
  const bubble = Number.isInteger(msg.target) ? bubbleById(msg.target) : null;
  const s = bubble && shown.get(bubble);
  if (!s || s.deleted) return;
  const from = typeof msg.from === 'string' ? msg.from : '';
  if (msg.type === 'edit' && typeof msg.text === 'string') {
    s.text = msg.text;
    s.edited = true;
  } else if (msg.type === 'delete') {
    Object.assign(s, { text: '', edited: false, deleted: true, reactions: new Map() });
  } else if (msg.type === 'react' && typeof msg.emoji === 'string') {
    const names = s.reactions.get(msg.emoji) || [];
    if (!names.includes(from)) s.reactions.set(msg.emoji, [...names, from]);
  } else if (msg.type === 'unreact' && typeof msg.emoji === 'string') {
    const names = (s.reactions.get(msg.emoji) || []).filter((n) => n !== from);
    if (names.length) s.reactions.set(msg.emoji, names);
    else s.reactions.delete(msg.emoji);
  }
  render(bubble);
}

function render(bubble) {
  const s = shown.get(bubble);
  const mine = bubble.dataset.mine === 'true';
  const text = bubble.querySelector('.bubble-text');
  if (text && !text.querySelector('input') && (s.deleted || s.text !== s.drawn)) {
    text.replaceChildren();
    if (s.deleted) text.append(el('em', { text: 'Message deleted' }));
    else renderMarkdown(text, s.text, { names: [], self: state.name });
    s.drawn = s.deleted ? null : s.text;
  }
  bubble.dataset.deleted = s.deleted ? 'true' : 'false';
  bubble.dataset.edited = s.edited ? 'true' : 'false';
  bubble.querySelector('.edited-mark').hidden = !s.edited;
  const chips = bubble.querySelector('.reactions');
  chips.replaceChildren(...[...s.reactions].map(([emoji, names]) => {
    const own = names.includes(state.name);
    const chip = el('button', {
      type: 'button',
      class: 'reaction' + (own ? ' own' : ''),
      'data-testid': 'reaction',
      'data-emoji': emoji,
      'data-count': names.length,
      'aria-pressed': own ? 'true' : 'false',
      title: names.join(', '),
      'aria-label': `${emoji} ${names.length}: ${names.join(', ')}`,
    }, el('span', { text: emoji }), el('span', { class: 'count', text: String(names.length) }));
    chip.addEventListener('click', () => send({ type: own ? 'unreact' : 'react', id: s.id, emoji }));
    return chip;
  }));
  const actions = bubble.querySelector('.message-actions');
  actions.replaceChildren();
  if (s.deleted) return;
  if (mine) actions.append(button('Edit', () => startEdit(bubble)));
  // A moderator may delete anyone's; the server decides.
  if (mine || heldByModerator()) actions.append(button('Delete', () => send({ type: 'delete', id: s.id })));
  actions.append(button('React', () => togglePicker(bubble)));
}

function button(label, onClick) {
  const b = el('button', { type: 'button', class: 'action', 'data-testid': 'action-' + label.toLowerCase(), text: label });
  b.addEventListener('click', onClick);
  return b;
}

function send(frame) {
  const why = sendFrame(frame);
  if (why) toast(why === 'offline' ? 'Not connected: try again once back online' : 'Not sent: try again in a moment');
}

/** The text becomes a box holding it: Enter sends the edit, Escape leaves it as it was. */
function startEdit(bubble) {
  const s = shown.get(bubble);
  const text = bubble.querySelector('.bubble-text');
  if (!text || text.querySelector('input')) return;
  const box = el('input', { type: 'text', class: 'edit-box', 'aria-label': 'Edit message', value: s.text });
  box.value = s.text;
  const done = () => { text.replaceChildren(); s.drawn = null; render(bubble); };
  box.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.stopPropagation(); done(); }
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    const value = box.value;
    if (value.trim() === '' || utf8Length(value) > state.limits.text) return;
    if (value !== s.text) send({ type: 'edit', id: s.id, text: value });
    done();
  });
  text.replaceChildren(box);
  box.focus();
  box.select();
}

function togglePicker(bubble) {
  const s = shown.get(bubble);
  const open = bubble.querySelector('.react-picker');
  if (open) { open.remove(); return; }
  const picker = el('div', { class: 'react-picker', role: 'group', 'aria-label': 'Pick a reaction', 'data-testid': 'react-picker' });
  for (const emoji of EMOJI) {
    const own = (s.reactions.get(emoji) || []).includes(state.name);
    const b = el('button', { type: 'button', 'aria-label': 'React with ' + emoji, text: emoji });
    b.addEventListener('click', () => {
      send({ type: own ? 'unreact' : 'react', id: s.id, emoji });
      picker.remove();
    });
    picker.append(b);
  }
  bubble.querySelector('.message-actions').after(picker);
  picker.querySelector('button').focus();
}
