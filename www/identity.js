// Who this page is to the server (docs/PROTOCOL.md, "join"): a random key
// kept by this browser, sent with the name, so that the server knows this
// browser's own tabs and reloads for the same person; and, when the server
// asks for one, an identity token, given to the page once in a sign-in
// link (`…/#token=TOKEN`) and kept by this browser. Also the words for the
// refusals that come from who one is: tokens, bans and moderators.

import { saved, randomId } from './util.js';

const STORE_KEY = 'wschat.key';
const STORE_TOKEN = 'wschat.token';

/** 16 random bytes as base64url: 22 letters, digits, '-' and '_'. */
function randomKey() {
  return randomId(16);
}

// Without storage (a private window) the key lasts as long as the page,
// which still lets its reconnects be recognised.
let pageKey = '';

/** This browser's key, made the first time it is asked for. */
export function browserKey() {
  let key = saved.get(STORE_KEY);
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(key)) {
    key = pageKey || randomKey();
    saved.set(STORE_KEY, key);
  }
  pageKey = key;
  return key;
}

/** The token from a sign-in link (taken out of the address bar), else the one kept. */
export function heldToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    saved.set(STORE_TOKEN, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return saved.get(STORE_TOKEN);
}

export function forgetToken() {
  saved.remove(STORE_TOKEN);
}

/** A token's claims (read, not verified: the server does that); {} if it has none. */
function claimsOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : {};
  } catch (_) {
    return {};
  }
}

/** The name a token says its holder goes by. */
export function tokenName(token) {
  const claims = claimsOf(token);
  return typeof claims.sub === 'string' ? claims.sub : '';
}

/** Whether the token kept is a moderator's (`"mod":true`): the page then offers Delete on every message. */
export function heldByModerator() {
  const token = heldToken();
  return !!token && claimsOf(token).mod === true;
}

/** The close reasons of a moderator's action (close code 1008). */
export const KICKED = 'kicked by moderator';
export const BANNED = 'banned by moderator';

function when(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * What to say on the join form for a refusal about who one is; '' for
 * other codes. `msg` is the error event; `name` and `room` what was asked.
 */
export function identityRefusal(msg, name, room) {
  switch (msg.code) {
    case 'banned':
      return 'A moderator has banned the name “' + name + '”'
        + (Number.isFinite(msg.until) ? ' until ' + when(msg.until) : '') + '.';
    case 'token_required':
      return 'This server lets in only people with a sign-in link. Ask whoever runs it for yours.';
    case 'token_invalid':
      return 'Your sign-in link is not valid here. Ask whoever runs this server for a new one.';
    case 'token_expired':
      return 'Your sign-in link has expired. Ask whoever runs this server for a new one.';
    case 'room_forbidden':
      return 'Your sign-in link does not let you into #' + room + '. Pick another room.';
    case 'name_mismatch':
      return 'Your sign-in link is for another name: ' + (msg.message || '') + '.';
    default:
      return '';
  }
}

/** What to say when a moderator closed the connection; '' for any other close. */
export function removedBy(ev, name, room) {
  if (ev.code !== 1008) return '';
  if (ev.reason === KICKED) return 'A moderator removed you from #' + room + '.';
  if (ev.reason === BANNED) return 'A moderator banned the name “' + name + '”.';
  return '';
}
