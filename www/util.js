// Small helpers shared by the page's modules: building elements, storage,
// and turning sizes, times and names into words. Nothing here knows about
// the chat itself.

export const $ = (id) => document.getElementById(id);

/** Builds an element; string children become text nodes (never HTML). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return node;
}

export function svgIcon(pathD) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', pathD);
  svg.append(p);
  return svg;
}
export const ICON_FILE = 'M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zm-1 7V3.5L18.5 9z';
export const ICON_DOWNLOAD = 'M5 20h14v-2H5zM19 9h-4V3H9v6H5l7 7z';

// localStorage outlives the tab (name, room, "go straight back in");
// sessionStorage lives as long as the tab, reloads included.
function store(kind) {
  return {
    get(key) {
      try { return window[kind].getItem(key) || ''; } catch (_) { return ''; }
    },
    set(key, value) {
      try { window[kind].setItem(key, value); } catch (_) { /* private mode */ }
    },
    remove(key) {
      try { window[kind].removeItem(key); } catch (_) { /* private mode */ }
    },
  };
}
export const saved = store('localStorage');
export const tabSaved = store('sessionStorage');

/** `n` random bytes as base64url: letters, digits, '-' and '_'. */
export function randomId(n) {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

/** A byte count in words: "840 B", "2.1 KB", "17 MB". */
export function formatSize(n) {
  if (n < 1024) return n + ' B';
  const units = ['KB', 'MB', 'GB'];
  let v = n;
  let i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
}

/** A limit in words, without a needless ".0": "16 MB", "4 KB", "1.5 MB". */
export function formatLimit(n) {
  return formatSize(n).replace(/\.0 /, ' ');
}

export function formatCount(n) {
  return n.toLocaleString('en-US');
}

export function formatTime(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function dayKey(ts) {
  const d = new Date(ts);
  return d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate();
}

export function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(ts) === dayKey(today.getTime())) return 'Today';
  if (dayKey(ts) === dayKey(yesterday.getTime())) return 'Yesterday';
  return d.toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });
}

function hashHue(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return Math.abs(h) % 360;
}

/** A round badge with a name's first letter, coloured by the name. */
export function avatar(name, extraClass) {
  const first = Array.from(name.trim())[0] || '?';
  const node = el('span', { class: 'avatar' + (extraClass ? ' ' + extraClass : ''), 'aria-hidden': 'true' });
  node.textContent = first.toUpperCase();
  node.style.setProperty('--hue', String(hashHue(name)));
  return node;
}

/** Same rules as the server: trimmed, 1-32 scalar values, no control chars. */
export function checkName(value, what) {
  const v = value.trim();
  const len = Array.from(v).length;
  if (len === 0) return 'Please enter a ' + what + '.';
  if (len > 32) return 'The ' + what + ' can be at most 32 characters.';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return 'The ' + what + ' cannot contain control characters.';
  if (/\p{Cf}/u.test(v)) return 'The ' + what + ' cannot contain invisible or direction-changing characters.';
  return '';
}

/** File names the server accepts: 1-255 bytes, no control characters, / or \. */
export function safeFileName(name) {
  let n = (name || 'file').replace(/[\u0000-\u001f\u007f-\u009f/\\]/g, '_');
  if (!n) n = 'file';
  while (utf8Length(n) > 255) n = Array.from(n).slice(0, -1).join('');
  return n;
}
