// The Client against a scripted in-memory WebSocket, on mocked timers (virtual
// time): requests and their failures, heartbeats, session storage and restore,
// reconnect backoff, protocol errors.
import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client, RequestError, encodeMessage, decodeMessage } from '../../web/webwire.js';

const KEY = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
const STORAGE_KEY = 'test.session';
const utf8 = (s) => new TextEncoder().encode(s);

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.all.push(this);
  }
  send(bytes) {
    assert.ok(bytes instanceof Uint8Array, 'the client sends binary frames');
    this.sent.push(decodeMessage(bytes));
  }
  close(code, reason) {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.closedWith = { code, reason };
  }
  // Test side.
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  accept(readTimeoutMs = 0, major = 2) {
    this.recv({ type: 'accept-conf', major, minor: 0, readTimeoutMs, messageBufferSize: 1 << 20 });
  }
  recv(msg) {
    this.recvRaw(encodeMessage(msg).buffer);
  }
  recvRaw(data) {
    this.onmessage?.({ data });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  lastRequest() {
    return this.sent.filter((m) => m.id !== undefined).at(-1);
  }
}

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};
const latest = () => FakeSocket.all.at(-1);

function makeClient(extra = {}) {
  const events = [];
  const storage = extra.storage ?? new MemoryStorage();
  const client = new Client({
    WebSocket: FakeSocket, storage, storageKey: STORAGE_KEY, random: () => 0.5,
    reconnectInitialDelay: 100, reconnectMaxDelay: 1000, reconnectFactor: 2, requestTimeout: 5000,
    ...extra,
  });
  for (const e of ['connected', 'disconnected', 'signal', 'sessionCreated', 'sessionClosed', 'restoreResult']) {
    client.on(e, (arg) => events.push([e, arg]));
  }
  return { client, events, storage };
}

async function connected(opts = {}, readTimeoutMs = 0) {
  const c = makeClient(opts);
  const done = c.client.connect('ws://test/ws');
  latest().open();
  latest().accept(readTimeoutMs);
  await done;
  return c;
}

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => {
  mock.timers.reset();
});

test('connect resolves on the accept conf; a request resolves with its reply', async () => {
  const { client } = makeClient();
  let resolved = false;
  const done = client.connect('ws://test/ws').then(() => { resolved = true; });
  const ws = latest();
  assert.equal(ws.binaryType, 'arraybuffer');
  ws.open();
  await flush();
  assert.equal(resolved, false, 'not before the accept conf');
  ws.accept();
  await done;
  assert.equal(client.status, 'ready');

  const p = client.request('echo', 'hé');
  await flush();
  const req = ws.lastRequest();
  assert.equal(req.type, 'request');
  assert.equal(req.name, 'echo');
  assert.equal(req.encoding, 'utf8');
  assert.deepEqual(req.data, utf8('hé'));
  ws.recv({ type: 'reply', id: req.id, encoding: 'utf8', data: utf8('hé') });
  assert.deepEqual(await p, { encoding: 'utf8', data: 'hé' });

  const b = client.request('bin', new Uint8Array([1, 2]));
  await flush();
  const breq = ws.lastRequest();
  assert.equal(breq.encoding, 'binary');
  ws.recv({ type: 'reply', id: breq.id, encoding: 'binary', data: new Uint8Array([3]) });
  assert.deepEqual(await b, { encoding: 'binary', data: new Uint8Array([3]) });

  const u = client.request('w', 'ok', { encoding: 'utf16' });
  await flush();
  const ureq = ws.lastRequest();
  assert.deepEqual(ureq.data, new Uint8Array([0x6f, 0, 0x6b, 0]));
  ws.recv({ type: 'reply', id: ureq.id, encoding: 'utf16', data: new Uint8Array([0x6f, 0, 0x6b, 0]) });
  assert.deepEqual(await u, { encoding: 'utf16', data: 'ok' });
});

test('error and special replies reject with their kind', async () => {
  const { client } = await connected();
  const ws = latest();
  const p = client.request('fail');
  await flush();
  ws.recv({ type: 'error-reply', id: ws.lastRequest().id, code: 'DEMO_ERROR', message: 'asked to fail' });
  await assert.rejects(p, (e) => e instanceof RequestError && e.kind === 'error'
    && e.code === 'DEMO_ERROR' && e.errorMessage === 'asked to fail');
  for (const kind of ['shutdown', 'internal', 'session-not-found', 'max-connections', 'sessions-disabled']) {
    const q = client.request('x');
    await flush();
    ws.recv({ type: 'special-reply', id: ws.lastRequest().id, reply: kind });
    await assert.rejects(q, (e) => e instanceof RequestError && e.kind === kind);
  }
});

test('a request times out; its late reply is dropped', async () => {
  const { client } = await connected();
  const ws = latest();
  const p = client.request('slow', '1', { timeout: 1000 });
  await flush();
  const id = ws.lastRequest().id;
  mock.timers.tick(999);
  await flush();
  let settled = false;
  p.catch(() => {}).finally(() => { settled = true; });
  await flush();
  assert.equal(settled, false);
  mock.timers.tick(1);
  await assert.rejects(p, (e) => e.kind === 'timeout');
  ws.recv({ type: 'reply', id, encoding: 'utf8', data: utf8('done') });
  assert.equal(client.status, 'ready', 'a late reply is not a protocol error');
});

test('disconnect fails pending requests at once; a request while down fails at once', async () => {
  const { client, events } = await connected({ autoReconnect: false });
  const p1 = client.request('a');
  const p2 = client.request('b');
  await flush();
  latest().drop();
  await assert.rejects(p1, (e) => e.kind === 'disconnected');
  await assert.rejects(p2, (e) => e.kind === 'disconnected');
  assert.equal(events.filter(([e]) => e === 'disconnected').length, 1);
  await assert.rejects(client.request('c'), (e) => e.kind === 'disconnected');
  assert.throws(() => client.signal('s', 'x'), (e) => e.kind === 'disconnected');
});

test('heartbeat at 0.75 x the read timeout after the last message sent', async () => {
  const { client } = await connected({}, 4000);
  const ws = latest();
  const beats = () => ws.sent.filter((m) => m.type === 'heartbeat').length;
  mock.timers.tick(2999);
  assert.equal(beats(), 0);
  mock.timers.tick(1);
  assert.equal(beats(), 1);
  mock.timers.tick(1500);
  client.signal('notify', 'x'); // sending re-arms the timer
  mock.timers.tick(2999);
  assert.equal(beats(), 1);
  mock.timers.tick(1);
  assert.equal(beats(), 2);
});

test('no heartbeat when the server has no read timeout', async () => {
  await connected({}, 0);
  mock.timers.tick(600000);
  assert.equal(latest().sent.filter((m) => m.type === 'heartbeat').length, 0);
});

test('signals both ways', async () => {
  const { client, events } = await connected();
  const ws = latest();
  client.signal('notify', 'hi');
  assert.deepEqual(ws.sent.at(-1), { type: 'signal', name: 'notify', encoding: 'utf8', data: utf8('hi') });
  ws.recv({ type: 'signal', name: 'notified', encoding: 'utf8', data: utf8('hi') });
  assert.deepEqual(events.at(-1), ['signal', { name: 'notified', encoding: 'utf8', data: 'hi' }]);
});

test('session created is stored; reconnect restores it before other requests go out', async () => {
  const { client, events, storage } = await connected();
  let ws = latest();
  const json = `{"k":"${KEY}","c":"2026-11-28T17:00:00Z","l":"2026-11-28T17:00:00Z","i":{"user":"ada"}}`;
  ws.recv({ type: 'session-created', json });
  assert.equal(storage.getItem(STORAGE_KEY), KEY);
  assert.deepEqual(events.at(-1)[1].info, { user: 'ada' });

  ws.drop();
  assert.equal(client.status, 'idle');
  mock.timers.tick(100); // first backoff step, random 0.5 = no jitter offset
  ws = latest();
  assert.equal(FakeSocket.all.length, 2);
  ws.open();
  ws.accept();
  assert.equal(client.status, 'restoring');
  const restore = ws.sent[0];
  assert.equal(restore.type, 'restore-session');
  assert.equal(restore.key, KEY);
  const who = client.request('whoami');
  await flush();
  assert.equal(ws.sent.length, 1, 'requests wait for the restore outcome');
  ws.recv({ type: 'reply', id: restore.id, encoding: 'utf8', data: utf8(json) });
  await flush();
  assert.equal(client.status, 'ready');
  const [, result] = events.find(([e]) => e === 'restoreResult');
  assert.equal(result.ok, true);
  assert.deepEqual(result.session.info, { user: 'ada' });
  const req = ws.lastRequest();
  assert.equal(req.name, 'whoami');
  ws.recv({ type: 'reply', id: req.id, encoding: 'utf8', data: utf8('ada') });
  assert.equal((await who).data, 'ada');
});

test('restore not found: key removed and reported; session closed removes it too', async () => {
  const storage = new MemoryStorage();
  storage.setItem(STORAGE_KEY, KEY);
  const { client, events } = makeClient({ storage });
  const done = client.connect('ws://test/ws');
  let ws = latest();
  ws.open();
  ws.accept();
  ws.recv({ type: 'special-reply', id: ws.sent[0].id, reply: 'session-not-found' });
  await done;
  const [, r] = events.find(([e]) => e === 'restoreResult');
  assert.equal(r.ok, false);
  assert.equal(r.error.kind, 'session-not-found');
  assert.equal(storage.getItem(STORAGE_KEY), null);

  storage.setItem(STORAGE_KEY, KEY);
  ws.recv({ type: 'session-closed' });
  assert.equal(storage.getItem(STORAGE_KEY), null);
  assert.equal(events.at(-1)[0], 'sessionClosed');

  storage.setItem(STORAGE_KEY, KEY);
  const closing = client.closeSession();
  await flush();
  ws = latest();
  assert.equal(ws.lastRequest().type, 'close-session');
  ws.recv({ type: 'reply', id: ws.lastRequest().id, encoding: 'binary', data: new Uint8Array(0) });
  await closing;
  assert.equal(storage.getItem(STORAGE_KEY), null);
});

test('reconnect backoff grows by the factor up to the cap; jitter stays within its band', async () => {
  const { client } = makeClient();
  client.connect('ws://test/ws').catch(() => {});
  const delays = [];
  for (let i = 0; i < 6; i++) {
    const n = FakeSocket.all.length;
    latest().drop(); // the attempt fails before opening
    let waited = 0;
    while (FakeSocket.all.length === n) {
      mock.timers.tick(10);
      waited += 10;
      assert.ok(waited <= 100000, 'a reconnect attempt is made');
    }
    delays.push(waited);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);

  // Success resets the backoff.
  latest().open();
  latest().accept();
  await flush();
  latest().drop();
  let waited = 0;
  const n = FakeSocket.all.length;
  while (FakeSocket.all.length === n) {
    mock.timers.tick(10);
    waited += 10;
  }
  assert.equal(waited, 100);

  // With full-band jitter the delay is drawn from [0.5, 1.5] x base, capped.
  for (const [rand, want] of [[0, 50], [0.999999, 150]]) {
    FakeSocket.all = [];
    const c = makeClient({ random: () => rand, reconnectJitter: 0.5 }).client;
    c.connect('ws://test/ws').catch(() => {});
    latest().drop();
    let w = 0;
    while (FakeSocket.all.length === 1) {
      mock.timers.tick(1);
      w += 1;
    }
    assert.equal(w, want);
    c.close();
  }
  client.close();
});

test('malformed input closes the connection with a clear reason', async () => {
  const errors = mock.method(console, 'error', () => {});
  try {
    for (const bad of [new Uint8Array([6]).buffer, new Uint8Array([192, 1, 2]).buffer, 'text frame']) {
      FakeSocket.all = [];
      const { client, events } = await connected({ autoReconnect: false });
      const ws = latest();
      const p = client.request('x');
      await flush();
      ws.recvRaw(bad);
      assert.equal(ws.closedWith.code, 4002);
      await assert.rejects(p, (e) => e.kind === 'disconnected');
      const [, d] = events.find(([e]) => e === 'disconnected');
      assert.match(d.reason, /protocol error/);
    }
    // A message before the accept conf, and an unsupported version.
    for (const first of [{ type: 'session-closed' }, null]) {
      FakeSocket.all = [];
      const { client, events } = makeClient({ autoReconnect: false });
      const done = client.connect('ws://test/ws');
      latest().open();
      if (first) latest().recv(first);
      else latest().accept(0, 1);
      await assert.rejects(done);
      assert.equal(latest().closedWith.code, 4002);
      assert.ok(events.some(([e]) => e === 'disconnected'));
    }
    assert.ok(errors.mock.callCount() >= 5, 'each violation is logged to the console');
  } finally {
    errors.mock.restore();
  }
});

test('no accept conf within the accept timeout fails the attempt', async () => {
  const { client } = makeClient({ acceptTimeout: 2000, autoReconnect: false });
  const errors = mock.method(console, 'error', () => {});
  const done = client.connect('ws://test/ws');
  latest().open();
  mock.timers.tick(2000);
  await assert.rejects(done, /accept/);
  errors.mock.restore();
});
