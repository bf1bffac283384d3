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

const BARE_URL = /^https?:\/\/[^\s<>"']+/i;
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
    self: opts.self || '',
    mentionsMe: false,
  };
  const lines = text.split('\n');
  let plain = [];
  const flushPlain = (more) => {
    if (plain.length === 0) return;
    inline(parent, plain.join('\n') + (more ? '\n' : ''), ctx, true);
    plain = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*```(.*)$/.exec(lines[i]);
    if (open) {
      let end = i + 1;
      while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
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

/** Where the run of `delim` that closes one opened at `from` starts, or -1. */
function closing(text, delim, from) {
  let at = text.indexOf(delim, from);
  while (at !== -1) {
    const before = text[at - 1];
    const after = text[at + delim.length];
    const ok = at > from && !/\s/.test(before) && !isWord(after) && after !== delim[0];
    if (ok) return at;
    at = text.indexOf(delim, at + 1);
  }
  return -1;
}

/** Inline Markdown of `text` into `parent`; `links` is false inside a link's text. */
function inline(parent, text, ctx, links) {
  let buf = '';
  const flush = () => {
    if (buf) parent.append(document.createTextNode(buf));
    buf = '';
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const prev = text[i - 1];

    if (ch === '`') {
      const run = /^`+/.exec(text.slice(i))[0];
      const end = text.indexOf(run, i + run.length);
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
    if ((ch === '*' || ch === '_') && !isWord(prev)) {
      const double = text[i + 1] === ch;
      const delim = double ? ch + ch : ch;
      const start = i + delim.length;
      if (start < text.length && !/\s/.test(text[start]) && text[start] !== ch) {
        const end = closing(text, delim, start);
        if (end !== -1) {
          flush();
          const node = el(double ? 'strong' : 'em');
          inline(node, text.slice(start, end), ctx, links);
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
      const close = text.indexOf('](', i + 1);
      const nl = text.indexOf('\n', i);
      if (close > i + 1 && (nl === -1 || nl > close)) {
        const end = text.indexOf(')', close + 2);
        const href = end === -1 ? '' : safeUrl(text.slice(close + 2, end));
        if (href) {
          flush();
          const a = link(href);
          inline(a, text.slice(i + 1, close), ctx, false);
          parent.append(a);
          i = end + 1;
          continue;
        }
      }
    }

    if (links && (ch === 'h' || ch === 'H') && !isWord(prev)) {
      const m = BARE_URL.exec(text.slice(i));
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
      const rest = text.slice(i + 1).toLowerCase();
      const name = ctx.names.find((n) => rest.startsWith(n.toLowerCase()) && !isWord(text[i + 1 + n.length]));
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
