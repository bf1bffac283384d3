// wschat admin view: lists the rooms and who is in them, with the main
// metrics, and kicks or bans (each confirmed first in the page's own modal
// dialog) through the server's JSON API (/api/rooms,
// /api/kick, /api/ban, /api/unban), sending the admin token as a bearer
// token. The token is kept in this tab's sessionStorage only. Every name is
// put into the page as text, never as HTML.

import { $, el, tabSaved, formatCount } from './util.js';

const STORE_TOKEN = 'wschat.admin.token';
const STORE_NAME = 'wschat.admin.name';
const REFRESH_MS = 5000;

const signinScreen = $('signin-screen');
const signinForm = $('signin-form');
const tokenInput = $('admin-token');
const nameInput = $('admin-name');
const signinError = $('signin-error');
const adminScreen = $('admin-screen');
const statusText = $('admin-status-text');
const roomsEl = $('rooms');
const roomsEmpty = $('rooms-empty');
const bansEl = $('bans');
const bansEmpty = $('bans-empty');
const metricsEl = $('metrics');
const minutesInput = $('ban-minutes');
const bansKept = $('bans-kept');
const reachEl = $('reach');
const toasts = $('toasts');
const confirmDialog = $('confirm');
const confirmTitle = $('confirm-title');
const confirmText = $('confirm-text');
const confirmOk = $('confirm-ok');

let timer = null;

function toast(text, kind) {
  const node = el('div', { class: 'toast toast-' + (kind || 'ok'), role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'admin-toast' });
  node.append(el('span', { class: 'toast-text', text }));
  toasts.append(node);
  setTimeout(() => node.remove(), 6000);
  while (toasts.children.length > 4) toasts.firstElementChild.remove();
}

class Unauthorized extends Error {}

/** Calls the API; resolves to the parsed JSON answer, or throws. */
async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + tabSaved.get(STORE_TOKEN) };
  const label = tabSaved.get(STORE_NAME);
  if (label) headers['X-Admin-Name'] = label;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
  });
  if (res.status === 401) throw new Unauthorized('the admin token was refused');
  let json = null;
  try { json = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) throw new Error((json && json.message) || 'the server answered ' + res.status);
  return json;
}

function showSignin(error) {
  clearInterval(timer);
  timer = null;
  adminScreen.hidden = true;
  signinScreen.hidden = false;
  signinError.hidden = !error;
  signinError.textContent = error || '';
  tokenInput.setAttribute('aria-invalid', error ? 'true' : 'false');
  if (error) tokenInput.setAttribute('aria-describedby', 'signin-error');
  else tokenInput.removeAttribute('aria-describedby');
  tokenInput.focus();
}

function showAdmin() {
  signinScreen.hidden = true;
  adminScreen.hidden = false;
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function until(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

function plural(n, one, many) {
  return formatCount(n) + ' ' + (n === 1 ? one : many);
}

// Bans held in this process's memory end with it ("memory", or a server
// that does not say); shared ones ("redis") outlive any one instance.
let bansEndWithRestart = true;

/**
 * Asks the moderator to confirm an action in the page's own modal dialog:
 * `title` is the question, `text` what it does, `ok` the button that does
 * it. Resolves to true when confirmed; Cancel or Escape resolve to false.
 */
function confirmStep(title, text, ok) {
  confirmTitle.textContent = title;
  confirmText.textContent = text;
  confirmOk.textContent = ok;
  confirmDialog.returnValue = '';
  confirmDialog.showModal();
  return new Promise((resolve) => {
    confirmDialog.addEventListener('close', () => resolve(confirmDialog.returnValue === 'ok'), { once: true });
  });
}

confirmOk.addEventListener('click', () => confirmDialog.close('ok'));
$('confirm-cancel').addEventListener('click', () => confirmDialog.close('cancel'));

async function confirmKick(name, room) {
  const ok = await confirmStep('Kick ' + name + ' from #' + room + '?',
    'Their connections in #' + room + ' are closed and their page says a moderator removed them. Nothing stops them from joining again.',
    'Kick ' + name);
  if (ok) act('kick', { name, room });
}

async function confirmBan(name) {
  const minutes = Number(minutesInput.value);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > Number(minutesInput.max)) {
    toast('Not done: give the ban 1 to ' + formatCount(Number(minutesInput.max)) + ' minutes.', 'error');
    minutesInput.focus();
    return;
  }
  const ends = until(Date.now() + minutes * 60000) + (bansEndWithRestart ? ', or when the server restarts' : '');
  const ok = await confirmStep('Ban the name ' + name + '?',
    'Everyone using it, or a name that looks like it, is disconnected from every room and refused until ' + ends + ' (' + plural(minutes, 'minute', 'minutes') + ').',
    'Ban ' + name);
  if (ok) act('ban', { name, minutes });
}

function renderRooms(overview) {
  const rooms = Array.isArray(overview.rooms) ? overview.rooms : [];
  roomsEmpty.hidden = rooms.length > 0;
  roomsEl.replaceChildren(...rooms.map((room) => {
    const section = el('section', { class: 'admin-room', 'data-testid': 'room', 'data-room': room.name });
    section.append(el('h3', { text: '#' + room.name }));
    section.append(el('p', {
      class: 'admin-hint',
      text: plural(room.people.length, 'person', 'people') + ' · ' + plural(room.connections, 'connection', 'connections')
        + ' · ' + plural(room.history, 'message', 'messages') + ' kept',
    }));
    const list = el('ul', { class: 'admin-list' });
    for (const person of room.people) {
      const li = el('li', { class: 'admin-person', 'data-testid': 'person', 'data-room': room.name, 'data-name': person.name });
      li.append(el('span', { class: 'person-name', text: person.name }));
      li.append(el('span', {
        class: 'admin-count', 'data-testid': 'person-connections',
        text: plural(person.connections, 'connection', 'connections') + ' (' + person.modes.join(', ') + ')',
      }));
      // With shared rooms, one line per person per instance.
      if (person.instance) {
        li.dataset.instance = person.instance;
        li.append(el('span', {
          class: 'admin-count', 'data-testid': 'person-instance', title: 'instance ' + person.instance,
          text: 'on ' + shortId(person.instance),
        }));
      }
      const actions = el('span', { class: 'actions' });
      const kick = el('button', { class: 'btn btn-ghost btn-small', type: 'button', 'data-testid': 'kick', 'aria-label': 'Kick ' + person.name + ' from #' + room.name }, 'Kick');
      kick.addEventListener('click', () => confirmKick(person.name, room.name));
      const ban = el('button', { class: 'btn btn-ghost btn-small btn-danger', type: 'button', 'data-testid': 'ban', 'aria-label': 'Ban the name ' + person.name }, 'Ban');
      ban.addEventListener('click', () => confirmBan(person.name));
      actions.append(kick, ban);
      li.append(actions);
      list.append(li);
    }
    section.append(list);
    return section;
  }));
}

/** An instance's id, short enough to tell instances apart at a glance. */
function shortId(id) {
  return String(id).slice(0, 8);
}

/** Which instances answered, and loudly which did not (their people are not listed). */
function renderReach(overview) {
  const missing = Array.isArray(overview.missing) ? overview.missing : [];
  if (!Array.isArray(overview.instances)) {
    reachEl.hidden = true;
    return;
  }
  reachEl.hidden = false;
  reachEl.classList.toggle('admin-warning', missing.length > 0);
  reachEl.textContent = plural(overview.instances.length, 'instance', 'instances') + ' answered'
    + (missing.length > 0
      ? '; ' + plural(missing.length, 'instance', 'instances') + ' did not (' + missing.map(shortId).join(', ')
        + '): the people on ' + (missing.length === 1 ? 'it' : 'them') + ' are not listed.'
      : '.');
}

/** What an action's answer says of instances that did not answer. */
function notReached(r) {
  const missing = Array.isArray(r.missing) ? r.missing : [];
  return missing.length > 0
    ? '; ' + plural(missing.length, 'instance', 'instances') + ' did not answer (' + missing.map(shortId).join(', ') + ')'
    : '';
}

function renderBans(overview) {
  const bans = Array.isArray(overview.bans) ? overview.bans : [];
  bansEndWithRestart = overview.bans_kept !== 'redis';
  bansKept.textContent = bansEndWithRestart
    ? 'Bans are kept in this server\'s memory: a restart of the server lifts them all.'
    : 'Bans are shared by every instance (in Redis) and outlive restarts.';
  bansEmpty.hidden = bans.length > 0;
  bansEl.replaceChildren(...bans.map((ban) => {
    const li = el('li', { class: 'admin-person', 'data-testid': 'banned', 'data-name': ban.name, 'data-until': String(ban.until) });
    li.append(el('span', { class: 'person-name', text: ban.name }));
    li.append(el('span', {
      class: 'admin-count', 'data-testid': 'ban-until',
      text: 'until ' + until(ban.until) + (bansEndWithRestart ? ' or until restart' : ''),
    }));
    const lift = el('button', { class: 'btn btn-ghost btn-small', type: 'button', 'data-testid': 'unban', 'aria-label': 'Lift ban on ' + ban.name }, 'Lift ban');
    lift.addEventListener('click', () => act('unban', { name: ban.name }));
    const actions = el('span', { class: 'actions' });
    actions.append(lift);
    li.append(actions);
    return li;
  }));
}

/** Reads the Prometheus text of /metrics into {name: total over its labels}, and by label. */
function parseMetrics(text) {
  const totals = {};
  const byLabel = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    totals[m[1]] = (totals[m[1]] || 0) + value;
    if (m[2]) byLabel[m[1] + m[2]] = value;
  }
  return { totals, byLabel };
}

async function renderMetrics(overview) {
  const shown = [
    ['Connections in rooms', overview.connections],
  ];
  // The metrics below are this instance's own (the view above is every instance's).
  try {
    // /api/metrics, the same text behind the admin token: a reverse proxy
    // keeps /metrics itself off the public side (docs/DEPLOY.md).
    const res = await fetch('/api/metrics', {
      cache: 'no-store',
      headers: { Authorization: 'Bearer ' + tabSaved.get(STORE_TOKEN) },
    });
    if (!res.ok) throw new Error('metrics: ' + res.status);
    const { totals, byLabel } = parseMetrics(await res.text());
    shown.push(
      ['Open connections', totals.wschat_connections],
      ['v1 / raw / echo', ['v1', 'raw', 'echo'].map((m) => formatCount(byLabel['wschat_connections{mode="' + m + '"}'] || 0)).join(' / ')],
      ['Rooms held', totals.wschat_rooms],
      // Messages and files people sent; the metric also counts joins and typing.
      ['Messages received', ['text', 'file'].reduce((n, k) => n + (byLabel['wschat_messages_received_total{kind="' + k + '"}'] || 0), 0)],
      ['Deliveries', totals.wschat_deliveries_total],
      ['Refused handshakes', totals.wschat_handshakes_refused_total],
      ['Held back by rate', totals.wschat_rate_limited_total],
      ['Disconnects', totals.wschat_disconnects_total],
    );
  } catch (_) {
    shown.push(['Metrics', 'unavailable']);
  }
  metricsEl.replaceChildren(...shown.map(([label, value]) => {
    const item = el('div', { 'data-testid': 'metric', 'data-label': label });
    item.append(el('dt', { text: label }));
    item.append(el('dd', { text: typeof value === 'number' ? formatCount(value) : String(value ?? 0) }));
    return item;
  }));
}

async function refresh() {
  try {
    const overview = await api('GET', '/api/rooms');
    renderRooms(overview);
    renderReach(overview);
    renderBans(overview);
    await renderMetrics(overview);
    statusText.textContent = 'Updated ' + new Date().toLocaleTimeString([], { timeStyle: 'medium' });
    adminScreen.dataset.loaded = 'true';
    return true;
  } catch (e) {
    if (e instanceof Unauthorized) {
      tabSaved.remove(STORE_TOKEN);
      showSignin('The server refused this admin token. Check it and try again.');
      return false;
    }
    statusText.textContent = 'Could not load: ' + e.message;
    return false;
  }
}

async function act(action, body) {
  try {
    const r = await api('POST', '/api/' + action, body);
    const kind = notReached(r) ? 'error' : 'ok';
    if (action === 'kick') toast('Kicked ' + r.name + ' from #' + body.room + ' (' + plural(r.kicked, 'connection', 'connections') + notReached(r) + ')', kind);
    else if (action === 'ban') toast('Banned ' + r.name + ' until ' + until(r.until) + ' (' + plural(r.kicked, 'connection', 'connections') + ' closed' + notReached(r) + ')', kind);
    else toast(r.unbanned ? 'Lifted the ban on ' + r.name : r.name + ' was not banned');
  } catch (e) {
    if (e instanceof Unauthorized) {
      showSignin('The server refused this admin token. Check it and try again.');
      return;
    }
    toast('Not done: ' + e.message, 'error');
  }
  refresh();
}

signinForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) {
    showSignin('Give the admin token.');
    return;
  }
  tabSaved.set(STORE_TOKEN, token);
  tabSaved.set(STORE_NAME, nameInput.value.trim());
  if (await refresh()) {
    tokenInput.value = '';
    showAdmin();
  }
});

$('refresh-button').addEventListener('click', refresh);
$('signout-button').addEventListener('click', () => {
  tabSaved.remove(STORE_TOKEN);
  showSignin('');
});
document.addEventListener('visibilitychange', () => { if (!document.hidden && timer) refresh(); });

nameInput.value = tabSaved.get(STORE_NAME);
if (tabSaved.get(STORE_TOKEN)) {
  refresh().then((ok) => { if (ok) showAdmin(); });
} else {
  showSignin('');
}
