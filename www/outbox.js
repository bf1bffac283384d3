// Messages this page has sent, or will send, until the server confirms
// them (docs/PROTOCOL.md, "Sending exactly once"). Each gets a `cid` of its
// own; the server's copy of a message that carries it back is the
// confirmation. Until then the message waits at the end of the list, marked
// as not sent. What is typed without a connection waits here and goes once
// the page is back in the room, in the order it was typed; what was sent and
// not confirmed when a connection ended goes again with the same `cid`, which
// the server never delivers twice. The texts are kept in this tab's
// sessionStorage too, so a reload does not lose them.
import { tabSaved, randomId } from './util.js';
import { addPending, setPendingState, removePending } from './log.js';
import { perRoom } from './state.js';

const STORE = 'wschat.outbox'; // {"ROOM\nNAME": [{cid, text, ts}, …]}
const KEEP_MAX = 200; // texts kept per room; more is a page gone wrong

// Each room's own (state.js perRoom).
const box = perRoom('outbox', () => ({
  key: '', // room and name the messages are for
  items: [], // oldest first: {cid, text, ts, sent, node}
}));

/** A new client id: 16 random characters (the protocol allows 1 to 64). */
export function newCid() {
  return randomId(12);
}

function keyOf(room, name) {
  return room + '\n' + name;
}

function readAll() {
  try {
    const all = JSON.parse(tabSaved.get(STORE) || '{}');
    return all && typeof all === 'object' && !Array.isArray(all) ? all : {};
  } catch (_) {
    return {};
  }
}

function save() {
  if (!box.key) return;
  const all = readAll();
  const texts = box.items.slice(-KEEP_MAX).map(({ cid, text, ts }) => ({ cid, text, ts }));
  if (texts.length) all[box.key] = texts;
  else delete all[box.key];
  if (Object.keys(all).length) tabSaved.set(STORE, JSON.stringify(all));
  else tabSaved.remove(STORE);
}

/**
 * Takes up the messages this tab still had for `name` in `room` (typed
 * before a reload, or before leaving the room), shown as waiting.
 */
export function openOutbox(room, name) {
  closeOutbox();
  box.key = keyOf(room, name);
  const kept = readAll()[box.key];
  if (!Array.isArray(kept)) return;
  for (const k of kept) {
    if (!k || typeof k.cid !== 'string' || typeof k.text !== 'string' || k.text.trim() === '') continue;
    const item = { cid: k.cid, text: k.text, ts: Number(k.ts) || Date.now(), sent: false };
    item.node = addPending(item.cid, item.text, 'queued');
    box.items.push(item);
  }
}

/** The server spells the room or the name its own way: keep the messages under that. */
export function renameOutbox(room, name) {
  const key = keyOf(room, name);
  if (key === box.key) return;
  const all = readAll();
  delete all[box.key];
  tabSaved.set(STORE, JSON.stringify(all));
  box.key = key;
  save();
}

/** Forgets the room's messages on this page (they stay kept for the tab). */
export function closeOutbox() {
  for (const item of box.items) removePending(item.node);
  box.items = [];
  box.key = '';
}

/** Messages not yet confirmed. */
export function waiting() {
  return box.items.length;
}

/** Messages that have not gone out on the current connection. */
export function unsent() {
  return box.items.filter((i) => !i.sent).length;
}

/** Messages sent on the current connection and not yet confirmed. */
export function inFlight() {
  return box.items.filter((i) => i.sent).length;
}

/** A message that was sent at once: it waits for its confirmation. */
export function addSent(cid, text) {
  const item = { cid, text, ts: Date.now(), sent: true };
  item.node = addPending(cid, text, 'sending');
  box.items.push(item);
  save();
}

/**
 * A message with no connection to go on, or behind others that wait;
 * shown as `how` ('queued', or 'retrying' while the server cannot store).
 */
export function enqueue(text, how = 'queued') {
  const item = { cid: newCid(), text, ts: Date.now(), sent: false };
  item.node = addPending(item.cid, text, how);
  box.items.push(item);
  save();
}

/**
 * Sends what has not gone out yet, oldest first, through `send(frame)`
 * (which returns '' when sent, otherwise why not), at most `max` of them.
 * Stops at the first that cannot go and returns why ('' when everything
 * it could send went).
 */
export function flush(send, max = Infinity) {
  let n = 0;
  for (const item of box.items) {
    if (item.sent) continue;
    if (n >= max) break;
    const why = send({ type: 'message', text: item.text, cid: item.cid });
    if (why) return why;
    item.sent = true;
    n++;
    setPendingState(item.node, 'sending');
  }
  return '';
}

/**
 * The server could not store the message with `cid` (error `unavailable`):
 * it stays where it is, waiting to go again with the same `cid`. False
 * when no message of ours has that `cid`.
 */
export function unstored(cid) {
  const item = box.items.find((x) => x.cid === cid);
  if (!item) return false;
  item.sent = false;
  setPendingState(item.node, 'retrying');
  return true;
}

/** The connection has ended: whatever was not confirmed goes again on the next one. */
export function requeue() {
  for (const item of box.items) {
    item.sent = false;
    setPendingState(item.node, 'queued');
  }
}

/**
 * A `message` event from us: if it confirms one of ours (by its `cid`; by its
 * text from a server that does not echo `cid`), that one stops waiting.
 */
export function confirm(msg) {
  let i = typeof msg.cid === 'string' ? box.items.findIndex((x) => x.cid === msg.cid) : -1;
  if (i < 0 && typeof msg.cid !== 'string' && !msg.replay) {
    i = box.items.findIndex((x) => x.sent && x.text === msg.text);
  }
  if (i < 0) return false;
  const [item] = box.items.splice(i, 1);
  removePending(item.node);
  save();
  return true;
}

/**
 * The server refused a message we sent (too long, or empty): the first sent
 * one that `refusedIf` says it was, else the oldest sent. Takes it out and
 * returns its text.
 */
export function refused(refusedIf) {
  const sent = box.items.filter((x) => x.sent);
  const item = sent.find(refusedIf) || sent[0];
  if (!item) return null;
  box.items.splice(box.items.indexOf(item), 1);
  removePending(item.node);
  save();
  return item.text;
}

/** Something we could never send (over the limits): takes out the oldest unsent one. */
export function dropFirstUnsent() {
  const item = box.items.find((x) => !x.sent);
  if (!item) return null;
  box.items.splice(box.items.indexOf(item), 1);
  removePending(item.node);
  save();
  return item.text;
}
