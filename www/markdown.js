// A message's text drawn as a little Markdown: **bold**, *italic* or
// _italic_, `code`, fenced code blocks (``` lines), links ([text](https://…)
// and bare http(s) URLs) and @mentions of people in the room. Line breaks
// stay as they are typed (the bubble keeps white space).
//
// The text is parsed here, by hand, into elements made with createElement
// and text nodes: nothing of it is ever handed to the browser as HTML, so
// markup in a message stays text. Only http: and https: addresses become
// links; anything else in a link's brackets is shown as it was typed. The
// raw text is what is sent and stored: other clients see it unchanged.
import { el } from './util.js';

const BARE_URL = /https?:\/\/[^\s<>"']+/iy; // sticky: matched where lastIndex is
const TRAILING = /[.,;:!?)\]}'"]+$/;
const WORD = /[\p{L}\p{N}_]/u;

/** `url` if it is an absolute http(s) address, else ''. */
export function safeUrl(url) {
  if (!/^https?:\/\//i.test(url) || /[\s<>"]/.test(url)) return '';
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
  } catch (_) {
    return '';
  }
}

function link(href, ...children) {
  return el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, ...children);
}

function isWord(ch) {
  return ch !== undefined && ch !== '' && WORD.test(ch);
}

/**
 * Appends `text` to `parent` as Markdown. `opts.names` are the names that
 * can be mentioned (`@name`); `opts.self` is ours. Returns whether the text
 * mentions `opts.self`.
 */
export function renderMarkdown(parent, text, opts = {}) {
  const ctx = {
    // Longest first, so that "@ann marie" wins over "@ann".
    names: Array.from(new Set(opts.names || [])).filter(Boolean).sort((a, b) => b.length - a.length),
    folded: [],
    self: opts.self || '',
    mentionsMe: false,
  };
  ctx.folded = ctx.names.map((n) => n.toLowerCase());
  const lines = text.split('\n');
  // For each line, the next line that can close a fence (found once, from the end).
  const nextFence = new Array(lines.length + 1).fill(lines.length);
  for (let k = lines.length - 1; k >= 0; k--) nextFence[k] = /^\s*```\s*$/.test(lines[k]) ? k : nextFence[k + 1];
  let plain = [];
  const flushPlain = (more) => {
    if (plain.length === 0) return;
    inline(parent, plain.join('\n') + (more ? '\n' : ''), ctx, true);
    plain = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*```(.*)$/.exec(lines[i]);
    if (open) {
      const end = nextFence[i + 1];
      if (end < lines.length) {
        // A block: the lines between its fences, exactly as typed.
        flushPlain(false);
        const code = el('code', { text: lines.slice(i + 1, end).join('\n') });
        const lang = open[1].trim();
        if (/^[\w+#.-]{1,32}$/.test(lang)) code.dataset.lang = lang;
        parent.append(el('pre', { class: 'code-block' }, code));
        i = end;
        continue;
      }
    }
    plain.push(lines[i]);
  }
  flushPlain(false);
  return ctx.mentionsMe;
}

const MAX_DEPTH = 8; // emphasis nested deeper than this is shown as typed

/**
 * Searches in `text` that stay linear however it is made: where each
 * emphasis delimiter may close (found once per text), and `indexOf` that
 * remembers where a string was not found, so that a long run of openers
 * without closers is not searched again from each.
 */
function searcher(text) {
  const closers = new Map();
  const missing = new Map();
  return {
    /** Where a run of `delim` that closes one opened before `from` starts, or -1. */
    closing(delim, from) {
      let at = closers.get(delim);
      if (!at) {
        at = [];
        for (let k = text.indexOf(delim); k !== -1; k = text.indexOf(delim, k + 1)) {
          const before = text[k - 1];
          const after = text[k + delim.length];
          if (before !== undefined && !/\s/.test(before) && !isWord(after) && after !== delim[0]) at.push(k);
        }
        closers.set(delim, at);
      }
      let lo = 0;
      let hi = at.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (at[mid] > from) hi = mid;
        else lo = mid + 1;
      }
      return lo < at.length ? at[lo] : -1;
    },
    indexOf(str, from) {
      const gone = missing.get(str);
      if (gone !== undefined && from >= gone) return -1;
      const at = text.indexOf(str, from);
      if (at === -1) missing.set(str, Math.min(from, gone === undefined ? Infinity : gone));
      return at;
    },
  };
}

/** Inline Markdown of `text` into `parent`; `links` is false inside a link's text. */
function inline(parent, text, ctx, links, depth = 0) {
  let buf = '';
  const flush = () => {
    if (buf) parent.append(document.createTextNode(buf));
    buf = '';
  };
  const find = searcher(text);
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const prev = text[i - 1];

    if (ch === '`') {
      let n = 1;
      while (text[i + n] === '`') n++;
      const run = '`'.repeat(n);
      const end = find.indexOf(run, i + run.length);
      if (end > i + run.length) {
        flush();
        parent.append(el('code', { class: 'code-inline', text: text.slice(i + run.length, end) }));
        i = end + run.length;
        continue;
      }
      buf += run;
      i += run.length;
      continue;
    }

    // Emphasis starts and ends at a word's edge: snake_case and 2*3*4 stay as typed.
    if ((ch === '*' || ch === '_') && !isWord(prev) && depth < MAX_DEPTH) {
      const double = text[i + 1] === ch;
      const delim = double ? ch + ch : ch;
      const start = i + delim.length;
      if (start < text.length && !/\s/.test(text[start]) && text[start] !== ch) {
        const end = find.closing(delim, start);
        if (end !== -1) {
          flush();
          const node = el(double ? 'strong' : 'em');
          inline(node, text.slice(start, end), ctx, links, depth + 1);
          parent.append(node);
          i = end + delim.length;
          continue;
        }
      }
      buf += delim;
      i += delim.length;
      continue;
    }

    if (links && ch === '[') {
      const close = find.indexOf('](', i + 1);
      const nl = find.indexOf('\n', i);
      if (close > i + 1 && (nl === -1 || nl > close)) {
        const end = find.indexOf(')', close + 2);
        const href = end === -1 ? '' : safeUrl(text.slice(close + 2, end));
        if (href) {
          flush();
          const a = link(href);
          inline(a, text.slice(i + 1, close), ctx, false, depth + 1);
          parent.append(a);
          i = end + 1;
          continue;
        }
      }
    }

    if (links && (ch === 'h' || ch === 'H') && !isWord(prev)) {
      BARE_URL.lastIndex = i;
      const m = BARE_URL.exec(text);
      if (m) {
        let url = m[0];
        const trail = TRAILING.exec(url);
        if (trail) url = url.slice(0, -trail[0].length);
        const href = safeUrl(url);
        if (href) {
          flush();
          parent.append(link(href, url));
          i += url.length;
          continue;
        }
      }
    }

    if (ch === '@' && !isWord(prev)) {
      const name = ctx.names.find((n, k) => !isWord(text[i + 1 + n.length])
        && text.substr(i + 1, n.length).toLowerCase() === ctx.folded[k]);
      if (name) {
        flush();
        const me = name === ctx.self;
        if (me) ctx.mentionsMe = true;
        parent.append(el('span', {
          class: 'mention' + (me ? ' mention-me' : ''), 'data-testid': 'mention', 'data-name': name,
        }, text.slice(i, i + 1 + name.length)));
        i += 1 + name.length;
        continue;
      }
    }

    buf += ch;
    i++;
  }
  flush();
}
