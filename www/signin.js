// Signing in by a link (the token itself is identity.js's): the name field
// locked to the link's name and saying why, the "Sign out" beside it, and,
// for a visitor without a link, the server's need of one said on the form
// before Join is pressed (from GET /api/info, docs/PROTOCOL.md).
import { $ } from './util.js';
import { heldToken, tokenName } from './identity.js';

const joinName = $('join-name');
const signedIn = $('signed-in');
const needsLink = $('join-needs-link');

// Whether the server needs a sign-in link: null until it has said.
let tokenRequired = null;

/** The name the held sign-in link gives, or ''. */
export function linkName() {
  return tokenName(heldToken());
}

/**
 * Shows the join form's sign-in state: with a link, the name is the link's,
 * read-only, described by the hint, with "Sign out"; without one, the name
 * is free, and the form says when this server needs a link.
 */
export function showSignIn() {
  const name = linkName();
  if (name) joinName.value = name;
  joinName.readOnly = Boolean(name);
  if (name) {
    joinName.setAttribute('aria-readonly', 'true');
    joinName.dataset.describedby = 'join-name-hint';
  } else {
    joinName.removeAttribute('aria-readonly');
    delete joinName.dataset.describedby;
  }
  // The join form's error (view.js) keeps its own reference beside this one.
  const refs = (joinName.getAttribute('aria-describedby') || '').split(' ')
    .filter((id) => id && id !== 'join-name-hint');
  if (name) refs.unshift('join-name-hint');
  if (refs.length) joinName.setAttribute('aria-describedby', refs.join(' '));
  else joinName.removeAttribute('aria-describedby');
  signedIn.hidden = !name;
  needsLink.hidden = !(tokenRequired && !name);
}

/** Asks the server whether it needs a sign-in link, and says so. */
export async function learnServer() {
  try {
    const res = await fetch('/api/info', { cache: 'no-store' });
    if (!res.ok) return;
    const info = await res.json();
    tokenRequired = info && info.token_required === true;
  } catch (_) {
    return; // an older server, or none: nothing is said
  }
  showSignIn();
}
