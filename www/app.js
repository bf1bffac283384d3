// wschat page: speaks the `wschat.v1` subprotocol to /ws on the same origin.
// Every piece of user content (names, rooms, messages, file names, errors)
// is put into the page with textContent or as attribute values, never as HTML.
'use strict';

(function () {
  const PROTOCOL = 'wschat.v1';
  const STORE_NAME = 'wschat.name';
  const STORE_ROOM = 'wschat.room';
  const STORE_AUTO = 'wschat.auto'; // '1' while the user has not pressed Leave
  const TYPING_SEND_EVERY_MS = 2000; // protocol: at most every 2 seconds
  const TYPING_SHOW_MS = 3500; // forget a typist after this long without news
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const NAME_TAKEN_RETRIES = 8; // on reconnect our old session may still hold the name
  const GROUP_WINDOW_MS = 5 * 60 * 1000;

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  /** Builds an element; string children become text nodes (never HTML). */
  function el(tag, attrs, ...children) {
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

  function svgIcon(pathD) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', pathD);
    svg.append(p);
    return svg;
  }
  const ICON_FILE = 'M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zm-1 7V3.5L18.5 9z';
  const ICON_DOWNLOAD = 'M5 20h14v-2H5zM19 9h-4V3H9v6H5l7 7z';

  function storageGet(key) {
    try { return localStorage.getItem(key) || ''; } catch (_) { return ''; }
  }
  function storageSet(key, value) {
    try { localStorage.setItem(key, value); } catch (_) { /* private mode */ }
  }
  function storageRemove(key) {
    try { localStorage.removeItem(key); } catch (_) { /* private mode */ }
  }

  function utf8Length(s) {
    return new TextEncoder().encode(s).length;
  }

  function formatSize(n) {
    if (n < 1024) return n + ' B';
    const units = ['KB', 'MB', 'GB'];
    let v = n;
    let i = -1;
    do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
    return (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
  }

  function formatTime(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function dayKey(ts) {
    const d = new Date(ts);
    return d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate();
  }

  function dayLabel(ts) {
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

  function avatar(name, extraClass) {
    const first = Array.from(name.trim())[0] || '?';
    const node = el('span', { class: 'avatar' + (extraClass ? ' ' + extraClass : ''), 'aria-hidden': 'true' });
    node.textContent = first.toUpperCase();
    node.style.setProperty('--hue', String(hashHue(name)));
    return node;
  }

  // Same rules as the server: trimmed, 1-32 scalar values, no control chars.
  function checkName(value, what) {
    const v = value.trim();
    const len = Array.from(v).length;
    if (len === 0) return 'Please enter a ' + what + '.';
    if (len > 32) return 'The ' + what + ' can be at most 32 characters.';
    if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return 'The ' + what + ' cannot contain control characters.';
    return '';
  }

  // File names the server accepts: 1-255 bytes, no control characters, / or \.
  function safeFileName(name) {
    let n = (name || 'file').replace(/[\u0000-\u001f\u007f-\u009f/\\]/g, '_');
    if (!n) n = 'file';
    while (utf8Length(n) > 255) n = Array.from(n).slice(0, -1).join('');
    return n;
  }

  /** Appends `text` to `parent`, turning http(s) URLs into links. */
  function appendLinkified(parent, text) {
    const re = /\bhttps?:\/\/[^\s<>"']+/gi;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      let url = m[0];
      // Leave trailing punctuation out of the link.
      const trail = /[.,;:!?)\]}]+$/.exec(url);
      if (trail) url = url.slice(0, -trail[0].length);
      if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
      const a = el('a', { href: url, target: '_blank', rel: 'noopener noreferrer nofollow' });
      a.textContent = url;
      parent.append(a);
      last = m.index + url.length;
      re.lastIndex = last;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  // ------------------------------------------------------------------ state

  const state = {
    ws: null,
    name: '', // name as confirmed by the server's welcome (trimmed form)
    room: '',
    wanted: false, // user wants to be connected (false after Leave)
    joined: false, // welcome received on the current socket
    everJoined: false, // at least one welcome in this session of the room
    retryNameTaken: false, // treat name_taken as our own stale session (reconnect, reload)
    swallowBinaryError: false, // a refused file announcement makes its bytes unexpected too
    lastSeenId: null, // newest event id seen; sent as `since` on reconnect
    seenIds: new Set(),
    attempt: 0,
    nameTakenRetries: 0,
    reconnectTimer: null,
    countdownTimer: null,
    pendingBinary: null, // live file event from someone else, awaiting its bytes
    outgoing: [], // files we sent, awaiting our own `file` event: {file, name, size, upload}
    unackedTexts: [], // texts we sent, awaiting our own `message` event
    users: [],
    typists: new Map(), // name -> expiry timer
    lastTypingSent: 0,
    lastGroup: null, // {from, ts, node} of the newest message bubble group
    lastDay: null,
    uploadQueue: [],
    uploading: null,
    unread: 0,
    blobUrls: [],
  };

  // ---------------------------------------------------------------- elements

  const joinScreen = $('join-screen');
  const joinForm = $('join-form');
  const joinName = $('join-name');
  const joinRoom = $('join-room');
  const joinError = $('join-error');
  const joinButton = $('join-button');
  const chatScreen = $('chat-screen');
  const roomNameEl = $('room-name');
  const statusEl = $('status');
  const statusText = $('status-text');
  const messagesEl = $('messages');
  const emptyState = $('empty-state');
  const newMessagesBtn = $('new-messages');
  const typingEl = $('typing');
  const uploadsEl = $('uploads');
  const composer = $('composer');
  const input = $('message-input');
  const sendButton = $('send-button');
  const fileInput = $('file-input');
  const presenceEl = $('presence');
  const peopleCount = $('people-count');
  const peopleCount2 = $('people-count-2');
  const peopleToggle = $('people-toggle');
  const sidebar = $('sidebar');
  const leaveButton = $('leave-button');
  const dropOverlay = $('drop-overlay');
  const dropRoom = $('drop-room');
  const toasts = $('toasts');

  // ------------------------------------------------------------------ toasts

  function toast(text, kind) {
    const node = el('div', { class: 'toast toast-' + (kind || 'error'), role: 'alert', 'data-testid': 'error' });
    node.append(el('span', { class: 'toast-text', text }));
    const close = el('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
    close.addEventListener('click', () => node.remove());
    node.append(close);
    toasts.append(node);
    setTimeout(() => node.remove(), 7000);
    while (toasts.children.length > 4) toasts.firstElementChild.remove();
  }

  // ------------------------------------------------------------------ status

  function setStatus(kind, text) {
    statusEl.dataset.state = kind;
    statusText.textContent = text;
    updateSendEnabled();
  }

  function updateSendEnabled() {
    const online = state.joined && state.ws && state.ws.readyState === WebSocket.OPEN;
    sendButton.disabled = !online || input.value.trim() === '';
    composer.classList.toggle('offline', !online);
  }

  // ------------------------------------------------------------------ screens

  function showJoin(errorText) {
    chatScreen.hidden = true;
    joinScreen.hidden = false;
    joinButton.disabled = false;
    joinButton.textContent = 'Join';
    if (errorText) {
      joinError.textContent = errorText;
      joinError.hidden = false;
    } else {
      joinError.hidden = true;
      joinError.textContent = '';
    }
    document.title = 'wschat';
    (joinName.value ? joinRoom : joinName).focus();
  }

  function showChat() {
    joinScreen.hidden = true;
    chatScreen.hidden = false;
    roomNameEl.textContent = state.room;
    dropRoom.textContent = state.room;
    updateTitle();
  }

  function resetConversation() {
    for (const url of state.blobUrls) URL.revokeObjectURL(url);
    state.blobUrls = [];
    state.seenIds.clear();
    state.lastSeenId = null;
    state.lastGroup = null;
    state.lastDay = null;
    state.unread = 0;
    state.users = [];
    state.outgoing = [];
    state.unackedTexts = [];
    state.uploadQueue = [];
    state.uploading = null;
    state.everJoined = false;
    for (const t of state.typists.values()) clearTimeout(t);
    state.typists.clear();
    messagesEl.replaceChildren(emptyState);
    emptyState.hidden = false;
    uploadsEl.replaceChildren();
    renderPresence();
    renderTyping();
  }

  function updateTitle() {
    const base = '#' + state.room + ' · wschat';
    document.title = state.unread > 0 ? '(' + state.unread + ') ' + base : base;
  }

  // ------------------------------------------------------------- connection

  function wsUrl() {
    return (location.protocol === 'https:' ? 'wss' : 'ws') + '://' + location.host + '/ws';
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    clearInterval(state.countdownTimer);
    state.reconnectTimer = null;
    if (!state.wanted) return;
    state.joined = false;
    state.pendingBinary = null;
    setStatus('connecting', state.everJoined ? 'Reconnecting…' : 'Connecting…');

    let ws;
    try {
      ws = new WebSocket(wsUrl(), PROTOCOL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    state.ws = ws;

    ws.addEventListener('open', () => {
      if (state.ws !== ws) return;
      const join = { type: 'join', room: state.room, name: state.name };
      if (state.lastSeenId !== null) join.since = state.lastSeenId;
      ws.send(JSON.stringify(join));
    });
    ws.addEventListener('message', (ev) => {
      if (state.ws !== ws) return;
      if (typeof ev.data === 'string') {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_) { return; }
        if (msg && typeof msg === 'object') handleEvent(msg);
      } else {
        handleBinary(ev.data);
      }
    });
    ws.addEventListener('close', (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      const wasJoined = state.joined;
      state.joined = false;
      failUploads();
      clearTypists();
      if (!state.wanted) return;
      if (!wasJoined && !state.everJoined && !state.retryNameTaken) {
        // A join typed in by hand that never got in: say so on the form.
        state.wanted = false;
        showJoin(ev.code === 1008 && ev.reason
          ? 'The server refused to let you in: ' + ev.reason
          : 'Could not reach the chat server. Check your connection and try again.');
        return;
      }
      if (wasJoined && ev.reason) toast('Disconnected: ' + ev.reason, 'warn');
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (!state.wanted) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, state.attempt));
    const delay = Math.round(base / 2 + Math.random() * base / 2);
    state.attempt++;
    const due = Date.now() + delay;
    const tick = () => {
      const s = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setStatus('offline', s > 0 ? 'Offline · retrying in ' + s + 's' : 'Offline · retrying…');
    };
    tick();
    clearInterval(state.countdownTimer);
    state.countdownTimer = setInterval(tick, 1000);
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (state.wanted && !state.ws && state.reconnectTimer) {
      state.attempt = 0;
      connect();
    }
  }
  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      reconnectNow();
      state.unread = 0;
      updateTitle();
    }
  });

  function send(obj) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  function leave() {
    state.wanted = false;
    storageRemove(STORE_AUTO);
    clearTimeout(state.reconnectTimer);
    clearInterval(state.countdownTimer);
    const ws = state.ws;
    state.ws = null;
    state.joined = false;
    if (ws) ws.close(1000);
    resetConversation();
    showJoin();
  }

  // ----------------------------------------------------------------- events

  const JOIN_ERRORS = new Set(['name_taken', 'invalid_name', 'invalid_room', 'bad_field', 'already_joined']);

  function handleEvent(msg) {
    // A live `file` event is immediately followed by its bytes; anything else
    // arriving first means they are not coming.
    if (state.pendingBinary && msg.type) {
      markFileUnavailable(state.pendingBinary);
      state.pendingBinary = null;
    }
    switch (msg.type) {
      case 'welcome': return onWelcome(msg);
      case 'presence': return onPresence(msg);
      case 'message': return onMessage(msg);
      case 'file': return onFile(msg);
      case 'join': return onJoin(msg);
      case 'leave': return onLeave(msg);
      case 'typing': return onTyping(msg);
      case 'gap': return onGap(msg);
      case 'error': return onError(msg);
      default: return undefined; // ignore what we do not know
    }
  }

  function onWelcome(msg) {
    state.joined = true;
    state.attempt = 0;
    state.nameTakenRetries = 0;
    state.retryNameTaken = true;
    if (typeof msg.name === 'string') state.name = msg.name;
    if (typeof msg.room === 'string') state.room = msg.room;
    storageSet(STORE_NAME, state.name);
    storageSet(STORE_ROOM, state.room);
    storageSet(STORE_AUTO, '1');
    // Without `since` the server replays the newest events up to last_id; we
    // have then caught up with everything the room still holds.
    if (state.lastSeenId === null && Number.isInteger(msg.last_id)) state.lastSeenId = msg.last_id;
    if (state.everJoined) addNote('Reconnected', 'ok');
    state.everJoined = true;
    showChat();
    setStatus('online', 'Connected as ' + state.name);
  }

  function onPresence(msg) {
    if (!Array.isArray(msg.users)) return;
    state.users = msg.users.filter((u) => typeof u === 'string');
    renderPresence();
  }

  function onJoin(msg) {
    if (typeof msg.name !== 'string') return;
    if (!state.users.includes(msg.name)) state.users.push(msg.name);
    renderPresence();
    addNote(msg.name + ' joined', 'join', msg.ts);
  }

  function onLeave(msg) {
    if (typeof msg.name !== 'string') return;
    state.users = state.users.filter((u) => u !== msg.name);
    stopTyping(msg.name);
    renderPresence();
    addNote(msg.name + ' left', 'leave', msg.ts);
  }

  function onTyping(msg) {
    if (typeof msg.name !== 'string' || msg.name === state.name) return;
    clearTimeout(state.typists.get(msg.name));
    state.typists.set(msg.name, setTimeout(() => stopTyping(msg.name), TYPING_SHOW_MS));
    renderTyping();
  }

  function stopTyping(name) {
    if (!state.typists.has(name)) return;
    clearTimeout(state.typists.get(name));
    state.typists.delete(name);
    renderTyping();
  }

  function clearTypists() {
    for (const t of state.typists.values()) clearTimeout(t);
    state.typists.clear();
    renderTyping();
  }

  function onGap(msg) {
    const lost = Number(msg.first) - Number(msg.since) - 1;
    addNote(lost > 0
      ? lost + (lost === 1 ? ' message was' : ' messages were') + ' missed while you were away'
      : 'Some messages were missed while you were away', 'warn');
  }

  function onError(msg) {
    const code = String(msg.code || 'error');
    const text = typeof msg.message === 'string' && msg.message ? msg.message : code.replace(/_/g, ' ');
    if (!state.joined && JOIN_ERRORS.has(code)) {
      if (code === 'name_taken' && state.retryNameTaken && state.nameTakenRetries < NAME_TAKEN_RETRIES) {
        // Our previous connection may not have been noticed as gone yet.
        state.nameTakenRetries++;
        const ws = state.ws;
        state.ws = null;
        if (ws) ws.close(1000);
        scheduleReconnect();
        return;
      }
      state.wanted = false;
      storageRemove(STORE_AUTO);
      const ws = state.ws;
      state.ws = null;
      if (ws) ws.close(1000);
      clearTimeout(state.reconnectTimer);
      clearInterval(state.countdownTimer);
      resetConversation();
      showJoin(friendlyJoinError(code, text));
      return;
    }
    if (code === 'text_too_long' || code === 'empty_text' || code === 'rate_limited') {
      const draft = state.unackedTexts.shift();
      if (draft !== undefined && input.value === '') {
        input.value = draft;
        autoGrow();
        updateSendEnabled();
      }
    }
    if (code === 'unexpected_binary' && state.swallowBinaryError) {
      state.swallowBinaryError = false;
      return;
    }
    if (code === 'file_too_large' || code === 'size_mismatch' || code === 'unexpected_frame') {
      state.swallowBinaryError = code === 'file_too_large';
      failCurrentUpload(text);
    }
    toast(friendlyError(code, text));
  }

  function friendlyJoinError(code, text) {
    switch (code) {
      case 'name_taken': return 'Someone in #' + joinRoom.value.trim() + ' is already called “' + joinName.value.trim() + '”. Pick another name.';
      case 'invalid_name': return 'That name is not allowed: ' + text;
      case 'invalid_room': return 'That room name is not allowed: ' + text;
      default: return text;
    }
  }

  function friendlyError(code, text) {
    switch (code) {
      case 'text_too_long': return 'Message too long: ' + text;
      case 'rate_limited': return 'Slow down: you are sending too fast.';
      case 'file_too_large': return 'File too large: ' + text;
      default: return text;
    }
  }

  function trackId(msg) {
    if (!Number.isInteger(msg.id)) return true;
    if (state.seenIds.has(msg.id)) return false;
    state.seenIds.add(msg.id);
    if (state.lastSeenId === null || msg.id > state.lastSeenId) state.lastSeenId = msg.id;
    return true;
  }

  function onMessage(msg) {
    if (typeof msg.text !== 'string') return;
    if (!trackId(msg)) return;
    const from = typeof msg.from === 'string' ? msg.from : '?';
    const mine = from === state.name;
    if (mine && !msg.replay) {
      const i = state.unackedTexts.indexOf(msg.text);
      if (i >= 0) state.unackedTexts.splice(i, 1);
    }
    stopTyping(from);
    const body = el('div', { class: 'bubble-text', 'data-testid': 'message-text' });
    appendLinkified(body, msg.text);
    addBubble(msg, from, body, 'text');
  }

  function onFile(msg) {
    if (!trackId(msg)) return;
    const from = typeof msg.from === 'string' ? msg.from : '?';
    const name = typeof msg.name === 'string' ? msg.name : 'file';
    const size = Number.isFinite(msg.size) ? msg.size : 0;
    const mime = typeof msg.mime === 'string' ? msg.mime : 'application/octet-stream';
    const mine = from === state.name;
    stopTyping(from);
    const holder = el('div', { class: 'file-holder' });
    const bubble = addBubble(msg, from, holder, 'file');
    const record = { msg, name, size, mime, holder, bubble };
    if (msg.replay) {
      renderFileUnavailable(record, 'No longer available');
    } else if (mine) {
      const i = state.outgoing.findIndex((o) => o.name === name && o.size === size);
      if (i >= 0) {
        const out = state.outgoing.splice(i, 1)[0];
        finishUpload(out.upload);
        renderFileReady(record, out.file);
      } else {
        renderFileUnavailable(record, 'Sent from another session');
      }
    } else {
      renderFilePending(record);
      state.pendingBinary = record;
    }
  }

  function handleBinary(data) {
    const record = state.pendingBinary;
    state.pendingBinary = null;
    if (!record) return; // bytes we did not expect: ignore
    renderFileReady(record, new Blob([data]));
  }

  function markFileUnavailable(record) {
    renderFileUnavailable(record, 'Transfer interrupted');
  }

  // --------------------------------------------------------------- rendering

  function nearBottom() {
    return messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
  }

  function scrollToBottom() {
    messagesEl.scrollTop = messagesEl.scrollHeight;
    newMessagesBtn.hidden = true;
  }

  function afterAppend(stick, mine) {
    if (stick || mine) scrollToBottom();
    else newMessagesBtn.hidden = false;
  }

  function ensureDay(ts) {
    if (!Number.isFinite(ts)) return;
    const key = dayKey(ts);
    if (key === state.lastDay) return;
    state.lastDay = key;
    state.lastGroup = null;
    messagesEl.append(el('div', { class: 'day-divider', role: 'separator' }, el('span', { text: dayLabel(ts) })));
  }

  function addBubble(msg, from, content, kind) {
    const stick = nearBottom();
    emptyState.hidden = true;
    const ts = Number.isFinite(msg.ts) ? msg.ts : Date.now();
    ensureDay(ts);
    const mine = from === state.name;
    const g = state.lastGroup;
    let group;
    if (g && g.from === from && ts - g.ts < GROUP_WINDOW_MS && g.node.isConnected && g.node === messagesEl.lastElementChild) {
      group = g.node;
      g.ts = ts;
    } else {
      group = el('div', { class: 'group' + (mine ? ' mine' : ''), 'data-testid': 'message-group', 'data-from': from });
      if (!mine) group.append(avatar(from));
      const col = el('div', { class: 'group-body' });
      const head = el('div', { class: 'group-head' });
      head.append(el('span', { class: 'sender', 'data-testid': 'message-from', text: mine ? 'You' : from }));
      col.append(head);
      group.append(col);
      messagesEl.append(group);
      state.lastGroup = { from, ts, node: group };
    }
    const bubble = el('div', {
      class: 'bubble bubble-' + kind,
      'data-testid': 'message',
      'data-id': Number.isInteger(msg.id) ? msg.id : undefined,
      'data-from': from,
      'data-kind': kind,
      'data-mine': mine ? 'true' : 'false',
      'data-replay': msg.replay ? 'true' : undefined,
    });
    bubble.append(content);
    const time = el('time', {
      class: 'time',
      'data-testid': 'message-time',
      datetime: new Date(ts).toISOString(),
      title: new Date(ts).toLocaleString(),
      text: formatTime(ts),
    });
    bubble.append(time);
    group.querySelector('.group-body').append(bubble);
    afterAppend(stick, mine && !msg.replay);
    if (!msg.replay && !mine && document.hidden) {
      state.unread++;
      updateTitle();
    }
    return bubble;
  }

  function addNote(text, kind, ts) {
    const stick = nearBottom();
    if (Number.isFinite(ts)) ensureDay(ts);
    const note = el('div', { class: 'note note-' + (kind || 'info'), 'data-testid': 'note', 'data-kind': kind || 'info' });
    note.append(el('span', { text }));
    if (Number.isFinite(ts)) note.append(el('time', { class: 'time', datetime: new Date(ts).toISOString(), text: formatTime(ts) }));
    messagesEl.append(note);
    state.lastGroup = null;
    if (stick) scrollToBottom();
  }

  function fileCard(record, statusText, href) {
    const card = el('div', { class: 'file-card', 'data-testid': 'file-card' });
    card.append(el('span', { class: 'file-icon' }, svgIcon(ICON_FILE)));
    const meta = el('span', { class: 'file-meta' });
    meta.append(el('span', { class: 'file-name', 'data-testid': 'file-name', text: record.name }));
    meta.append(el('span', { class: 'file-size', text: statusText ? formatSize(record.size) + ' · ' + statusText : formatSize(record.size) }));
    card.append(meta);
    if (href) {
      const a = el('a', {
        class: 'file-download',
        href,
        download: record.name,
        'data-testid': 'file-link',
        title: 'Download ' + record.name,
      }, svgIcon(ICON_DOWNLOAD));
      a.append(el('span', { class: 'sr-only', text: 'Download ' + record.name }));
      card.append(a);
    }
    return card;
  }

  function renderFilePending(record) {
    record.bubble.dataset.state = 'pending';
    record.holder.replaceChildren(fileCard(record, 'receiving…'));
  }

  function renderFileUnavailable(record, why) {
    record.bubble.dataset.state = 'unavailable';
    record.holder.replaceChildren(fileCard(record, why));
  }

  function renderFileReady(record, blob) {
    const stick = nearBottom();
    record.bubble.dataset.state = 'ready';
    const isImage = /^image\//i.test(record.mime);
    // Images keep their type so <img> can show them; anything else is typed
    // as opaque bytes so that following its link can only ever download it.
    const typed = new Blob([blob], { type: isImage ? record.mime : 'application/octet-stream' });
    const url = URL.createObjectURL(typed);
    state.blobUrls.push(url);
    if (isImage) {
      const img = el('img', { class: 'inline-image', src: url, alt: record.name, 'data-testid': 'inline-image', decoding: 'async' });
      img.addEventListener('load', () => { if (stick) scrollToBottom(); }, { once: true });
      img.addEventListener('error', () => {
        img.replaceWith(fileCard(record, 'not a viewable image', url));
      }, { once: true });
      const caption = el('div', { class: 'image-caption' });
      caption.append(el('span', { class: 'file-name', 'data-testid': 'file-name', text: record.name }));
      const a = el('a', { class: 'caption-download', href: url, download: record.name, 'data-testid': 'file-link' });
      a.textContent = 'Download · ' + formatSize(record.size);
      caption.append(a);
      record.holder.replaceChildren(img, caption);
    } else {
      record.holder.replaceChildren(fileCard(record, '', url));
    }
  }

  function renderPresence() {
    const users = state.users.slice().sort((a, b) => {
      if (a === state.name) return -1;
      if (b === state.name) return 1;
      return a.localeCompare(b);
    });
    presenceEl.replaceChildren(...users.map((u) => {
      const li = el('li', { class: 'person' + (u === state.name ? ' me' : ''), 'data-testid': 'presence-user', 'data-name': u });
      li.append(avatar(u, 'small'));
      li.append(el('span', { class: 'person-name', text: u }));
      if (u === state.name) li.append(el('span', { class: 'you-tag', text: 'you' }));
      return li;
    }));
    const n = String(state.users.length);
    peopleCount.textContent = n;
    peopleCount2.textContent = n;
  }

  function renderTyping() {
    const names = Array.from(state.typists.keys());
    typingEl.replaceChildren();
    typingEl.classList.toggle('active', names.length > 0);
    if (names.length === 0) return;
    let text;
    if (names.length === 1) text = names[0] + ' is typing';
    else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing';
    else text = 'Several people are typing';
    typingEl.append(el('span', { class: 'dots', 'aria-hidden': 'true' }, el('i'), el('i'), el('i')));
    typingEl.append(el('span', { 'data-testid': 'typing-text', text }));
  }

  // ------------------------------------------------------------------ sending

  function autoGrow() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 160) + 'px';
  }

  function sendMessage() {
    const text = input.value;
    if (text.trim() === '' || !state.joined) return;
    if (!send({ type: 'message', text })) {
      toast('Not connected: your message was kept.', 'warn');
      return;
    }
    state.unackedTexts.push(text);
    if (state.unackedTexts.length > 50) state.unackedTexts.shift();
    input.value = '';
    autoGrow();
    updateSendEnabled();
    state.lastTypingSent = 0;
  }

  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    sendMessage();
    input.focus();
  });

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendMessage();
    }
  });

  input.addEventListener('input', () => {
    autoGrow();
    updateSendEnabled();
    const now = Date.now();
    if (input.value.trim() !== '' && state.joined && now - state.lastTypingSent >= TYPING_SEND_EVERY_MS) {
      if (send({ type: 'typing' })) state.lastTypingSent = now;
    }
  });

  // ------------------------------------------------------------------ uploads

  function queueFiles(files) {
    if (!state.joined) {
      toast('Not connected: wait until you are back online to share files.', 'warn');
      return;
    }
    for (const file of files) {
      const upload = { file, name: safeFileName(file.name), size: file.size, node: null, bar: null, label: null };
      const bar = el('span', { class: 'bar' });
      const label = el('span', { class: 'upload-status', 'data-testid': 'upload-status', text: 'waiting…' });
      const node = el('li', { class: 'upload', 'data-testid': 'upload', 'data-name': upload.name, 'data-state': 'queued' },
        el('span', { class: 'upload-name', text: upload.name }),
        label,
        el('span', { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': 'Upload progress' }, bar));
      upload.node = node;
      upload.bar = bar;
      upload.label = label;
      uploadsEl.append(node);
      state.uploadQueue.push(upload);
    }
    pumpUploads();
  }

  function pumpUploads() {
    if (state.uploading || state.uploadQueue.length === 0) return;
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !state.joined) return;
    const upload = state.uploadQueue.shift();
    state.uploading = upload;
    const mime = upload.file.type || 'application/octet-stream';
    ws.send(JSON.stringify({ type: 'file', name: upload.name, size: upload.size, mime }));
    ws.send(upload.file);
    state.outgoing.push({ file: upload.file, name: upload.name, size: upload.size, upload });
    upload.node.dataset.state = 'sending';
    // Progress is the send buffer draining: bufferedAmount counts bytes that
    // are queued but not yet handed to the network.
    const total = Math.max(1, ws.bufferedAmount);
    const tick = () => {
      if (state.uploading !== upload) return;
      const left = state.ws === ws ? ws.bufferedAmount : total;
      const pct = upload.size === 0 ? 100 : Math.max(0, Math.min(100, Math.round(100 * (1 - left / total))));
      setProgress(upload, pct);
      if (left === 0 && state.ws === ws) {
        upload.node.dataset.state = 'delivering';
        upload.label.textContent = 'delivering…';
        state.uploading = null;
        pumpUploads();
        return;
      }
      upload.timer = setTimeout(tick, 50);
    };
    tick();
  }

  function setProgress(upload, pct) {
    upload.bar.style.width = pct + '%';
    upload.node.querySelector('.progress').setAttribute('aria-valuenow', String(pct));
    upload.node.dataset.progress = String(pct);
    upload.label.textContent = pct + '% of ' + formatSize(upload.size);
  }

  function finishUpload(upload) {
    if (!upload || !upload.node) return;
    clearTimeout(upload.timer);
    if (state.uploading === upload) {
      state.uploading = null;
      pumpUploads();
    }
    setProgress(upload, 100);
    upload.node.dataset.state = 'done';
    upload.label.textContent = 'sent';
    upload.node.remove();
  }

  function failUpload(upload, why) {
    clearTimeout(upload.timer);
    upload.node.dataset.state = 'failed';
    upload.label.textContent = why;
    const node = upload.node;
    setTimeout(() => node.remove(), 6000);
  }

  function failCurrentUpload(why) {
    // The oldest unacknowledged file is the one the server is talking about.
    const out = state.outgoing.shift();
    if (!out) return;
    if (state.uploading === out.upload) state.uploading = null;
    failUpload(out.upload, 'failed: ' + why);
    pumpUploads();
  }

  function failUploads() {
    const pending = state.outgoing.map((o) => o.upload).concat(state.uploadQueue);
    state.outgoing = [];
    state.uploadQueue = [];
    state.uploading = null;
    for (const u of pending) failUpload(u, 'connection lost, not sent');
  }

  fileInput.addEventListener('change', () => {
    if (fileInput.files && fileInput.files.length) queueFiles(Array.from(fileInput.files));
    fileInput.value = '';
  });

  let dragDepth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  window.addEventListener('dragenter', (e) => {
    if (chatScreen.hidden || !hasFiles(e)) return;
    e.preventDefault();
    dragDepth++;
    dropOverlay.hidden = false;
  });
  window.addEventListener('dragover', (e) => {
    if (chatScreen.hidden || !hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  window.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropOverlay.hidden = true;
  });
  window.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    dropOverlay.hidden = true;
    if (chatScreen.hidden) return;
    const files = Array.from(e.dataTransfer.files || []);
    if (files.length) queueFiles(files);
  });

  input.addEventListener('paste', (e) => {
    const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
    if (files.length) {
      e.preventDefault();
      queueFiles(files);
    }
  });

  // ---------------------------------------------------------------- chrome UI

  messagesEl.addEventListener('scroll', () => {
    if (nearBottom()) newMessagesBtn.hidden = true;
  });
  newMessagesBtn.addEventListener('click', scrollToBottom);

  peopleToggle.addEventListener('click', () => {
    const open = !sidebar.classList.contains('open');
    sidebar.classList.toggle('open', open);
    peopleToggle.setAttribute('aria-expanded', String(open));
  });

  leaveButton.addEventListener('click', leave);

  joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = joinName.value.trim();
    const room = joinRoom.value.trim() || 'lobby';
    const problem = checkName(name, 'name') || checkName(room, 'room name');
    if (problem) {
      joinError.textContent = problem;
      joinError.hidden = false;
      return;
    }
    joinError.hidden = true;
    start(name, room, false);
  });

  function start(name, room, automatic) {
    storageSet(STORE_NAME, name);
    storageSet(STORE_ROOM, room);
    resetConversation();
    state.name = name;
    state.room = room;
    state.wanted = true;
    state.attempt = 0;
    // A reload may race the server noticing our previous page has gone.
    state.nameTakenRetries = 0;
    state.retryNameTaken = automatic;
    joinButton.disabled = true;
    joinButton.textContent = 'Joining…';
    if (automatic) {
      showChat();
    }
    connect();
  }

  // ------------------------------------------------------------------- start

  const savedName = storageGet(STORE_NAME);
  const savedRoom = storageGet(STORE_ROOM);
  joinName.value = savedName;
  joinRoom.value = savedRoom || 'lobby';
  if (storageGet(STORE_AUTO) === '1' && savedName && !checkName(savedName, 'name') && !checkName(savedRoom || 'lobby', 'room')) {
    // Remembered from last time: go straight back in.
    start(savedName, savedRoom || 'lobby', true);
  } else {
    showJoin();
  }
})();
