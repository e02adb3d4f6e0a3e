// The demo room (room.html): Laravel Echo on pusher-js, as a Laravel page
// uses them, against windlass.
//
//   who is here      Echo.join('room.lobby') -> presence-room.lobby: here / joining / leaving
//   typing...        .whisper('typing') -> the client event client-typing, page to page
//   messages         .listen('.message.posted'), published by the web app
//                    (auth_server.php's /messages, or `php publish.php TEXT`)
//
// Query parameters: room (default lobby), key (app-key, the demo app),
// app (the web app with /broadcasting/auth and /messages; default port
// 8000 of this host). Nothing from the network is parsed as markup.
'use strict';
(() => {
  const params = new URLSearchParams(location.search);
  const ROOM = (params.get('room') || 'lobby').replace(/[^-a-zA-Z0-9_]/g, '') || 'lobby';
  const KEY = params.get('key') || 'app-key';
  const APP = (params.get('app') || `${location.protocol}//${location.hostname}:8000`).replace(/\/+$/, '');
  const TYPING_EVERY_MS = 1500; // whispers are client events: windlass allows 10 a second
  const TYPING_SHOWN_MS = 3000;

  const $ = (id) => document.getElementById(id);
  const statusEl = $('status');
  const problemEl = $('problem');
  const logEl = $('log');
  const membersEl = $('members');
  const typingEl = $('typing');
  const nameEl = $('name');
  const messageEl = $('message');
  const sendEl = $('send');
  $('room-name').textContent = ROOM;

  // A problem for the reader, with the command that fixes it.
  function problem(text, command) {
    problemEl.replaceChildren(document.createTextNode(text));
    if (command) {
      const code = document.createElement('code');
      code.textContent = command;
      problemEl.append(' ', code);
    }
    problemEl.hidden = false;
  }

  function append(className, text, who) {
    const li = document.createElement('li');
    li.className = className;
    if (who !== undefined) li.dataset.who = who;
    li.textContent = text;
    logEl.appendChild(li);
    logEl.scrollTop = logEl.scrollHeight;
  }
  const notice = (text) => append('notice', text);

  if (typeof window.Pusher !== 'function' || typeof window.Echo?.default !== 'function') {
    statusEl.dataset.state = 'failed';
    statusEl.textContent = 'Not connected';
    problem('pusher-js and Laravel Echo are not in the repository\'s node_modules. Install them, then reload:',
      'npm ci');
    return;
  }

  // Who this tab is: a demo has no login, so an id per tab and a name the
  // reader picks. A Laravel app knows its user from the session instead.
  function randomId() {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    return 'u' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  const me = {
    id: sessionStorage.getItem('windlass-room-id') || randomId(),
    name: localStorage.getItem('windlass-room-name') || `Guest ${Math.floor(100 + Math.random() * 900)}`,
  };
  sessionStorage.setItem('windlass-room-id', me.id);
  nameEl.value = me.name;
  const authParams = { user_id: me.id, name: me.name };

  // What resources/js/echo.js holds in a Laravel app with
  // BROADCAST_CONNECTION=reverb (or pusher), pointed at windlass.
  const secure = location.protocol === 'https:';
  const port = Number(location.port) || (secure ? 443 : 80);
  const echo = new window.Echo.default({
    broadcaster: 'reverb',
    key: KEY,
    wsHost: location.hostname,
    wsPort: port,
    wssPort: port,
    forceTLS: secure,
    enabledTransports: ['ws', 'wss'],
    authEndpoint: `${APP}/broadcasting/auth`,
    auth: { headers: {}, params: authParams },
  });
  window.echo = echo; // for the console

  const pusher = echo.connector.pusher;
  const STATES = { connected: 'Connected', connecting: 'Connecting…', unavailable: 'Server unreachable, retrying…',
    disconnected: 'Disconnected', failed: 'WebSockets unavailable' };
  function showState(state) {
    statusEl.dataset.state = state;
    statusEl.textContent = STATES[state] || state;
    sendEl.disabled = state !== 'connected';
  }
  pusher.connection.bind('state_change', ({ current }) => showState(current));
  pusher.connection.bind('error', (err) => {
    const code = err?.data?.code ?? err?.error?.data?.code;
    if (code === 4001) problem(`windlass knows no app with the key "${KEY}".`);
  });
  showState(pusher.connection.state);

  // --- who is here
  const members = new Map(); // id -> name
  function renderMembers() {
    const items = [...members].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => {
      const li = document.createElement('li');
      li.textContent = name;
      li.dataset.id = id;
      if (id === me.id) li.className = 'me';
      return li;
    });
    membersEl.replaceChildren(...items);
  }

  // --- typing
  const typers = new Map(); // id -> {name, timer}
  function renderTyping() {
    const names = [...typers.values()].map((t) => t.name);
    typingEl.textContent = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
  }
  function typing({ id, name } = {}) {
    if (typeof id !== 'string' || typeof name !== 'string' || id === me.id) return;
    clearTimeout(typers.get(id)?.timer);
    typers.set(id, { name, timer: setTimeout(() => { typers.delete(id); renderTyping(); }, TYPING_SHOWN_MS) });
    renderTyping();
  }
  function stopTyping(id) {
    clearTimeout(typers.get(id)?.timer);
    if (typers.delete(id)) renderTyping();
  }

  let room = null;
  function join() {
    room = echo.join(`room.${ROOM}`)
      .here((users) => {
        members.clear();
        for (const u of users) members.set(String(u.id), String(u.name));
        renderMembers();
        problemEl.hidden = true;
      })
      .joining((u) => { members.set(String(u.id), String(u.name)); renderMembers(); notice(`${u.name} joined`); })
      .leaving((u) => { members.delete(String(u.id)); stopTyping(String(u.id)); renderMembers(); notice(`${u.name} left`); })
      .listen('.message.posted', (m) => {
        stopTyping(String(m.user_id));
        append('msg', String(m.text), String(m.name));
      })
      .listenForWhisper('typing', typing)
      .error((err) => {
        problem(`The web app at ${APP} did not authorize the room (${err?.status || 'unreachable'}). Start it:`,
          'php -S 127.0.0.1:8000 examples/pusher/auth_server.php');
      });
  }
  join();

  let lastWhisper = 0;
  messageEl.addEventListener('input', () => {
    const now = Date.now();
    if (messageEl.value === '' || now - lastWhisper < TYPING_EVERY_MS || pusher.connection.state !== 'connected') return;
    lastWhisper = now;
    room.whisper('typing', { id: me.id, name: me.name });
  });

  // A new name: the member's user_info is signed at join time, so join again.
  nameEl.addEventListener('change', () => {
    const name = nameEl.value.trim().slice(0, 40);
    if (!name || name === me.name) { nameEl.value = me.name; return; }
    me.name = name;
    authParams.name = name;
    localStorage.setItem('windlass-room-name', name);
    echo.leave(`room.${ROOM}`);
    join();
  });

  // Messages go through the web app, which publishes them to the room with
  // this connection's socket_id left out (Laravel's ->toOthers()): the page
  // shows its own message at once.
  $('composer').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = messageEl.value.trim();
    if (!text || pusher.connection.state !== 'connected') return;
    messageEl.value = '';
    lastWhisper = 0;
    append('msg mine', text, me.name);
    const form = new URLSearchParams({ socket_id: echo.socketId(), user_id: me.id, name: me.name, room: ROOM, text });
    try {
      const res = await fetch(`${APP}/messages`, { method: 'POST', body: form });
      if (!res.ok) notice(`Not delivered: the web app answered ${res.status}.`);
    } catch {
      notice(`Not delivered: the web app at ${APP} is not reachable.`);
    }
  });
})();
