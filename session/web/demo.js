// The demo page: one Client on ws://<host>/ws, its state shown in plain elements.
import { Client, RequestError } from './webwire.js';

const $ = (id) => document.getElementById(id);
const client = new Client({ storageKey: 'weft.demo.session', reconnectMaxDelay: 3000 });
window.weftClient = client; // for poking at it from the console

function log(req, result) {
  const li = document.createElement('li');
  li.dataset.req = req;
  li.dataset.result = result;
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${req}: ${result}`;
  $('log').append(li);
}

function setSession(state) {
  const el = $('session');
  el.textContent = state;
  // A counter lets a watcher tell a fresh outcome from an old one with the same text.
  el.dataset.seq = String(Number(el.dataset.seq) + 1);
}

function outcomeText(e) {
  if (e instanceof RequestError) return e.kind === 'error' ? `error:${e.code}` : e.kind;
  return `exception:${e.message ?? e}`;
}

function replyText(reply) {
  if (typeof reply.data === 'string') return reply.data;
  return Array.from(reply.data, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function call(name, payload, opts) {
  let text;
  try {
    text = replyText(await client.request(name, payload, opts));
  } catch (e) {
    text = outcomeText(e);
  }
  $('last-reply').textContent = text;
  log(name, text);
  return text;
}

client.on('connected', () => {
  $('status').textContent = 'connected';
  log('connection', 'connected');
});
client.on('disconnected', ({ reason }) => {
  $('status').textContent = 'disconnected';
  log('connection', `disconnected (${reason})`);
});
client.on('sessionCreated', (s) => {
  $('user').textContent = s.info?.user ?? $('name').value;
  setSession('created');
  log('session', 'created');
});
client.on('sessionClosed', () => {
  $('user').textContent = '';
  setSession('none');
  log('session', 'closed');
});
client.on('restoreResult', async (r) => {
  if (r.ok) {
    setSession('restored');
    log('session', 'restored');
    const user = r.session.info?.user;
    if (typeof user === 'string') $('user').textContent = user;
    else {
      try {
        const who = await client.request('whoami');
        $('user').textContent = typeof who.data === 'string' ? who.data : '';
      } catch (e) {
        log('whoami', outcomeText(e));
      }
    }
  } else {
    const kind = r.error.kind;
    if (kind === 'session-not-found') {
      $('user').textContent = '';
      setSession('not-found');
    }
    log('session', `restore failed: ${kind}`);
  }
});
client.on('signal', (s) => {
  if (s.name === 'notified') $('last-signal').textContent = typeof s.data === 'string' ? s.data : replyText(s);
  log(`signal ${s.name}`, typeof s.data === 'string' ? s.data : replyText(s));
});

$('login').onclick = () => call('login', $('name').value);
$('whoami').onclick = () => call('whoami');
$('echo').onclick = () => call('echo', $('text').value);
$('fail').onclick = () => call('fail');
$('logout').onclick = () => call('logout');
$('slow').onclick = () => call('slow', $('ms').value, { timeout: 20000 });
$('notify').onclick = () => {
  try {
    client.signal('notify', $('text').value);
    log('notify', 'sent');
  } catch (e) {
    $('last-reply').textContent = outcomeText(e);
    log('notify', outcomeText(e));
  }
};

const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
client.connect(`${proto}//${location.host}/ws`).catch((e) => log('connection', e.message));
