// A history file's download URL is a capability the server signs for the
// room, and with an identity secret it expires (after a day). An expired or
// refused URL is asked for again with `file_url` (docs/PROTOCOL.md) over the
// room's connection: only a member of the room is answered.
import { sendFrame } from './connection.js';
import { perRoom, later } from './state.js';

const ANSWER_MS = 10000; // give up on an answer after this long
const EARLY_S = 30; // renew a URL this close to its expiry before using it

const asked = perRoom('fileurls', () => ({ waiting: new Map() })); // each room's file id → resolvers waiting for its fresh URL

/** Whether `url`'s `exp` (seconds since the epoch) has passed, or nearly. */
export function expired(url) {
  try {
    const exp = Number(new URL(url, location.href).searchParams.get('exp'));
    return exp > 0 && exp * 1000 < Date.now() + EARLY_S * 1000;
  } catch (_) {
    return false;
  }
}

/**
 * A fresh URL for the file of `record` (a history file's bubble), or '' if
 * none came: offline, refused, or no answer in time.
 */
export function renewFileUrl(record) {
  const id = record.msg && record.msg.id;
  return new Promise((resolve) => {
    if (!Number.isInteger(id)) return resolve('');
    const list = asked.waiting.get(id);
    if (list) return list.push(resolve); // asked already: share its answer
    if (sendFrame({ type: 'file_url', id, name: record.name })) return resolve('');
    asked.waiting.set(id, [resolve]);
    later(() => settle(id, ''), ANSWER_MS);
    return undefined;
  });
}

/** A URL that may be used now: `url`, or a fresh one if it has expired. */
export async function usableUrl(record, url) {
  if (!expired(url)) return url;
  return (await renewFileUrl(record)) || url;
}

/** The server's answer to `file_url`, with the URL checked as `fileUrl` does. */
export function onFileUrl(msg, check) {
  settle(msg.id, check(msg.url));
}

/** `no_such_file` carries no id: every question still open is answered ''. */
export function failFileUrls() {
  for (const id of [...asked.waiting.keys()]) settle(id, '');
}

function settle(id, url) {
  const list = asked.waiting.get(id);
  if (!list) return;
  asked.waiting.delete(id);
  for (const resolve of list) resolve(url);
}
