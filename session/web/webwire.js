// webwire protocol 2.0 for the browser: the codec and a reconnecting client.
// An ES module with no dependencies and no build step. Node can import it too
// (the codec needs only TextEncoder/TextDecoder; the Client takes an injected
// WebSocket class and storage when it runs outside a browser).

/** Message type bytes (the first byte of every message). */
export const MessageType = Object.freeze({
  ERROR_REPLY: 0,
  REPLY_SHUTDOWN: 1,
  REPLY_INTERNAL_ERROR: 2,
  REPLY_SESSION_NOT_FOUND: 3,
  REPLY_MAX_SESSION_CONNECTIONS: 4,
  REPLY_SESSIONS_DISABLED: 5,
  SESSION_CREATED: 21,
  SESSION_CLOSED: 22,
  ACCEPT_CONF: 23,
  CLOSE_SESSION: 31,
  RESTORE_SESSION: 32,
  HEARTBEAT: 33,
  SIGNAL_BINARY: 63,
  SIGNAL_UTF8: 64,
  SIGNAL_UTF16: 65,
  REQUEST_BINARY: 127,
  REQUEST_UTF8: 128,
  REQUEST_UTF16: 129,
  REPLY_BINARY: 191,
  REPLY_UTF8: 192,
  REPLY_UTF16: 193,
});

/** Payload encodings, as carried by the message type. */
export const Encoding = Object.freeze({ BINARY: 'binary', UTF8: 'utf8', UTF16: 'utf16' });

const ENCODING_OFFSET = { binary: 0, utf8: 1, utf16: 2 };
const ENCODING_BY_OFFSET = ['binary', 'utf8', 'utf16'];

/** Special reply kinds by type byte, and back. */
const SPECIAL_BY_TYPE = {
  1: 'shutdown',
  2: 'internal',
  3: 'session-not-found',
  4: 'max-connections',
  5: 'sessions-disabled',
};
const TYPE_BY_SPECIAL = Object.fromEntries(
  Object.entries(SPECIAL_BY_TYPE).map(([t, k]) => [k, Number(t)]),
);

/** The protocol version this module speaks. */
export const PROTOCOL_MAJOR = 2;
export const PROTOCOL_MINOR = 0;

const ID_LEN = 8;
const KEY_RE = /^[A-Za-z0-9_-]{64}$/;

/** A message that breaks the wire layout, or an attempt to encode one. */
export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * Why a request failed. `kind` is one of 'error' (the handler's error reply:
 * `code` and `message` set), 'shutdown', 'internal', 'session-not-found',
 * 'max-connections', 'sessions-disabled', 'timeout', 'disconnected'.
 */
export class RequestError extends Error {
  constructor(kind, code = null, message = null) {
    super(kind === 'error' ? `${code}: ${message}` : kind);
    this.name = 'RequestError';
    this.kind = kind;
    this.code = code;
    if (kind === 'error') this.errorMessage = message;
  }
}

const utf8Encoder = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf16Strict = new TextDecoder('utf-16le', { fatal: true });

function toBytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new ProtocolError(`${what} must be bytes`);
}

function checkId(id) {
  const bytes = toBytes(id, 'request id');
  if (bytes.length !== ID_LEN) throw new ProtocolError(`request id must be ${ID_LEN} bytes, got ${bytes.length}`);
  return bytes;
}

function isPrintableAscii(bytes) {
  for (const b of bytes) if (b < 0x20 || b > 0x7e) return false;
  return true;
}

function asciiBytes(text, what, min, max) {
  if (typeof text !== 'string') throw new ProtocolError(`${what} must be a string`);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new ProtocolError(`${what} must be printable ASCII`);
    out[i] = c;
  }
  if (out.length < min || out.length > max) {
    throw new ProtocolError(`${what} length must be ${min}..=${max}, got ${out.length}`);
  }
  return out;
}

function asciiString(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function utf8Decode(bytes, what) {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new ProtocolError(`${what} is not valid UTF-8`);
  }
}

function utf16Decode(bytes, what) {
  if (bytes.length % 2 !== 0) throw new ProtocolError(`${what} has an odd UTF-16 length`);
  try {
    return utf16Strict.decode(bytes);
  } catch {
    throw new ProtocolError(`${what} is not valid UTF-16`);
  }
}

function utf16Encode(text) {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[2 * i] = c & 0xff;
    out[2 * i + 1] = c >> 8;
  }
  return out;
}

/**
 * Turns an application value into payload bytes: a string is encoded as
 * UTF-8 or UTF-16 (little-endian), bytes are taken as they are, null or
 * undefined is empty.
 */
export function encodePayload(value, encoding) {
  if (!(encoding in ENCODING_OFFSET)) throw new ProtocolError(`unknown encoding ${encoding}`);
  if (value == null) return new Uint8Array(0);
  if (typeof value === 'string') {
    if (encoding === 'binary') return utf8Encoder.encode(value);
    return encoding === 'utf8' ? utf8Encoder.encode(value) : utf16Encode(value);
  }
  const bytes = toBytes(value, 'payload');
  if (encoding === 'utf16' && bytes.length % 2 !== 0) throw new ProtocolError('UTF-16 payload must have an even length');
  return bytes;
}

/** Payload bytes as the application sees them: a string for text, Uint8Array for binary. */
export function decodePayload(encoding, data) {
  if (encoding === 'utf8') return utf8Decode(data, 'payload');
  if (encoding === 'utf16') return utf16Decode(data, 'payload');
  return data;
}

function concat(parts) {
  let len = 0;
  for (const p of parts) len += typeof p === 'number' ? 1 : p.length;
  const out = new Uint8Array(len);
  let at = 0;
  for (const p of parts) {
    if (typeof p === 'number') out[at++] = p;
    else {
      out.set(p, at);
      at += p.length;
    }
  }
  return out;
}

function u32le(n) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ProtocolError(`${n} is not a u32`);
  return new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]);
}

function payloadBytes(msg) {
  const data = msg.data == null ? new Uint8Array(0) : toBytes(msg.data, 'payload');
  if (msg.encoding === 'utf16' && data.length % 2 !== 0) throw new ProtocolError('UTF-16 payload must have an even length');
  return data;
}

function encodingOffset(encoding) {
  const off = ENCODING_OFFSET[encoding];
  if (off === undefined) throw new ProtocolError(`unknown encoding ${encoding}`);
  return off;
}

/**
 * Encodes one message object (the shape `decodeMessage` returns) into its
 * bytes. Throws ProtocolError for anything the layout cannot carry.
 *
 * Shapes (`id` is 8 bytes, `data` bytes, names and codes printable ASCII):
 *   {type:'accept-conf', major, minor, readTimeoutMs, messageBufferSize, subprotocol?}
 *   {type:'request', id, name, encoding, data}       {type:'reply', id, encoding, data}
 *   {type:'error-reply', id, code, message}           {type:'special-reply', id, reply}
 *   {type:'signal', name, encoding, data}             {type:'session-created', json}
 *   {type:'session-closed'}  {type:'close-session', id}  {type:'restore-session', id, key}
 *   {type:'heartbeat'}
 */
export function encodeMessage(msg) {
  switch (msg.type) {
    case 'accept-conf': {
      const sub = msg.subprotocol == null ? new Uint8Array(0) : toBytes(msg.subprotocol, 'subprotocol');
      return concat([MessageType.ACCEPT_CONF, msg.major & 0xff, msg.minor & 0xff,
        u32le(msg.readTimeoutMs), u32le(msg.messageBufferSize), sub]);
    }
    case 'request': {
      const name = asciiBytes(msg.name ?? '', 'request name', 0, 255);
      const data = payloadBytes(msg);
      if (name.length === 0 && data.length === 0) throw new ProtocolError('a request needs a name or a payload');
      const pad = msg.encoding === 'utf16' && name.length % 2 === 1 ? [0] : [];
      return concat([MessageType.REQUEST_BINARY + encodingOffset(msg.encoding), checkId(msg.id),
        name.length, name, ...pad, data]);
    }
    case 'reply': {
      const data = payloadBytes(msg);
      const pad = msg.encoding === 'utf16' ? [0] : [];
      return concat([MessageType.REPLY_BINARY + encodingOffset(msg.encoding), checkId(msg.id), ...pad, data]);
    }
    case 'error-reply': {
      const code = asciiBytes(msg.code, 'error code', 1, 255);
      return concat([MessageType.ERROR_REPLY, checkId(msg.id), code.length, code,
        utf8Encoder.encode(msg.message ?? '')]);
    }
    case 'special-reply': {
      const t = TYPE_BY_SPECIAL[msg.reply];
      if (t === undefined) throw new ProtocolError(`unknown special reply ${msg.reply}`);
      return concat([t, checkId(msg.id)]);
    }
    case 'signal': {
      const name = asciiBytes(msg.name ?? '', 'signal name', 0, 255);
      const data = payloadBytes(msg);
      const min = msg.encoding === 'utf16' ? 2 : 1;
      if (data.length < min) throw new ProtocolError(`a signal payload needs at least ${min} byte(s)`);
      const pad = msg.encoding === 'utf16' && name.length % 2 === 1 ? [0] : [];
      return concat([MessageType.SIGNAL_BINARY + encodingOffset(msg.encoding), name.length, name, ...pad, data]);
    }
    case 'session-created': {
      const json = typeof msg.json === 'string' ? utf8Encoder.encode(msg.json) : toBytes(msg.json, 'session json');
      if (json.length === 0) throw new ProtocolError('session created needs its JSON');
      return concat([MessageType.SESSION_CREATED, json]);
    }
    case 'session-closed':
      return new Uint8Array([MessageType.SESSION_CLOSED]);
    case 'close-session':
      return concat([MessageType.CLOSE_SESSION, checkId(msg.id)]);
    case 'restore-session': {
      if (typeof msg.key !== 'string' || msg.key.length === 0) throw new ProtocolError('restore needs a key');
      const key = new Uint8Array(msg.key.length);
      for (let i = 0; i < msg.key.length; i++) {
        const c = msg.key.charCodeAt(i);
        if (c > 0x7f) throw new ProtocolError('session key must be 7-bit ASCII');
        key[i] = c;
      }
      return concat([MessageType.RESTORE_SESSION, checkId(msg.id), key]);
    }
    case 'heartbeat':
      return new Uint8Array([MessageType.HEARTBEAT]);
    default:
      throw new ProtocolError(`unknown message type ${msg.type}`);
  }
}

function needLen(bytes, min, what) {
  if (bytes.length < min) throw new ProtocolError(`${what}: ${bytes.length} bytes, needs at least ${min}`);
}

function exactLen(bytes, len, what) {
  if (bytes.length !== len) throw new ProtocolError(`${what}: ${bytes.length} bytes, must be exactly ${len}`);
}

function checkPayloadText(encoding, data, what) {
  if (encoding === 'utf8') utf8Decode(data, what);
  else if (encoding === 'utf16') utf16Decode(data, what);
}

function readName(bytes, at, what) {
  const n = bytes[at];
  const name = bytes.subarray(at + 1, at + 1 + n);
  if (name.length !== n) throw new ProtocolError(`${what}: too short for its ${n}-byte name`);
  if (!isPrintableAscii(name)) throw new ProtocolError(`${what}: name is not printable ASCII`);
  return asciiString(name);
}

function readPadding(bytes, at, what) {
  if (at >= bytes.length) throw new ProtocolError(`${what}: missing UTF-16 padding byte`);
  if (bytes[at] !== 0) throw new ProtocolError(`${what}: UTF-16 padding byte is not 0`);
}

/**
 * Decodes one message (the bytes of one binary frame). Throws ProtocolError
 * with a message naming the rule broken. Text payloads are checked to be
 * valid UTF-8 / UTF-16 but returned as bytes in `data`.
 */
export function decodeMessage(input) {
  const b = toBytes(input, 'message');
  if (b.length === 0) throw new ProtocolError('empty message');
  const t = b[0];
  switch (t) {
    case MessageType.ERROR_REPLY: {
      needLen(b, 11, 'error reply');
      const n = b[9];
      if (n === 0) throw new ProtocolError('error reply: code length is 0');
      needLen(b, 10 + n, 'error reply');
      const code = b.subarray(10, 10 + n);
      if (!isPrintableAscii(code)) throw new ProtocolError('error reply: code is not printable ASCII');
      return {
        type: 'error-reply',
        id: b.slice(1, 9),
        code: asciiString(code),
        message: utf8Decode(b.subarray(10 + n), 'error reply message'),
      };
    }
    case 1: case 2: case 3: case 4: case 5:
      exactLen(b, 9, 'special reply');
      return { type: 'special-reply', id: b.slice(1, 9), reply: SPECIAL_BY_TYPE[t] };
    case MessageType.SESSION_CREATED: {
      needLen(b, 2, 'session created');
      const json = utf8Decode(b.subarray(1), 'session created JSON');
      return { type: 'session-created', json, session: parseSessionInfo(json) };
    }
    case MessageType.SESSION_CLOSED:
      exactLen(b, 1, 'session closed');
      return { type: 'session-closed' };
    case MessageType.ACCEPT_CONF: {
      needLen(b, 11, 'accept conf');
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return {
        type: 'accept-conf',
        major: b[1],
        minor: b[2],
        readTimeoutMs: dv.getUint32(3, true),
        messageBufferSize: dv.getUint32(7, true),
        subprotocol: b.slice(11),
      };
    }
    case MessageType.CLOSE_SESSION:
      exactLen(b, 9, 'close session');
      return { type: 'close-session', id: b.slice(1, 9) };
    case MessageType.RESTORE_SESSION: {
      needLen(b, 10, 'restore session');
      const key = b.subarray(9);
      for (const c of key) if (c > 0x7f) throw new ProtocolError('restore session: key is not 7-bit ASCII');
      return { type: 'restore-session', id: b.slice(1, 9), key: asciiString(key) };
    }
    case MessageType.HEARTBEAT:
      exactLen(b, 1, 'heartbeat');
      return { type: 'heartbeat' };
    case MessageType.SIGNAL_BINARY: case MessageType.SIGNAL_UTF8: case MessageType.SIGNAL_UTF16: {
      const encoding = ENCODING_BY_OFFSET[t - MessageType.SIGNAL_BINARY];
      const what = 'signal';
      needLen(b, 3, what);
      const name = readName(b, 1, what);
      let at = 2 + name.length;
      if (encoding === 'utf16' && name.length % 2 === 1) {
        readPadding(b, at, what);
        at += 1;
      }
      const data = b.slice(at);
      const min = encoding === 'utf16' ? 2 : 1;
      if (data.length < min) throw new ProtocolError(`${what}: payload needs at least ${min} byte(s)`);
      checkPayloadText(encoding, data, `${what} payload`);
      return { type: 'signal', name, encoding, data };
    }
    case MessageType.REQUEST_BINARY: case MessageType.REQUEST_UTF8: case MessageType.REQUEST_UTF16: {
      const encoding = ENCODING_BY_OFFSET[t - MessageType.REQUEST_BINARY];
      const what = 'request';
      needLen(b, 10, what);
      const name = readName(b, 9, what);
      let at = 10 + name.length;
      if (encoding === 'utf16' && name.length % 2 === 1) {
        readPadding(b, at, what);
        at += 1;
      }
      const data = b.slice(at);
      if (name.length === 0 && data.length === 0) throw new ProtocolError(`${what}: needs a name or a payload`);
      checkPayloadText(encoding, data, `${what} payload`);
      return { type: 'request', id: b.slice(1, 9), name, encoding, data };
    }
    case MessageType.REPLY_BINARY: case MessageType.REPLY_UTF8: case MessageType.REPLY_UTF16: {
      const encoding = ENCODING_BY_OFFSET[t - MessageType.REPLY_BINARY];
      const what = 'reply';
      needLen(b, 9, what);
      let at = 9;
      if (encoding === 'utf16') {
        readPadding(b, at, what);
        at += 1;
      }
      const data = b.slice(at);
      checkPayloadText(encoding, data, `${what} payload`);
      return { type: 'reply', id: b.slice(1, 9), encoding, data };
    }
    default:
      throw new ProtocolError(`unknown message type ${t}`);
  }
}

/** True if `key` has the session key form: 64 chars of URL-safe base64. */
export function isSessionKey(key) {
  return typeof key === 'string' && KEY_RE.test(key);
}

function parseTime(value, what) {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new ProtocolError(`session ${what} is not a string`);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new ProtocolError(`session ${what} is not an RFC 3339 time`);
  return d;
}

/**
 * Parses the session JSON (`{"k":key,"c":creation,"l":lastLookup,"i":info}`)
 * into `{key, creation: Date|null, lastLookup: Date|null, info: object|null}`.
 */
export function parseSessionInfo(json) {
  let v;
  try {
    v = JSON.parse(json);
  } catch {
    throw new ProtocolError('session JSON does not parse');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ProtocolError('session JSON is not an object');
  if (!isSessionKey(v.k)) throw new ProtocolError('session JSON has no valid key "k"');
  const info = v.i === undefined ? null : v.i;
  if (info !== null && (typeof info !== 'object' || Array.isArray(info))) {
    throw new ProtocolError('session info "i" is not an object');
  }
  return { key: v.k, creation: parseTime(v.c, 'creation "c"'), lastLookup: parseTime(v.l, 'last lookup "l"'), info };
}

function idHex(id) {
  let s = '';
  for (const b of id) s += b.toString(16).padStart(2, '0');
  return s;
}

const EVENTS = ['connected', 'disconnected', 'signal', 'sessionCreated', 'sessionClosed', 'restoreResult'];

const DEFAULTS = {
  storageKey: 'weft.session',
  requestTimeout: 10000,
  acceptTimeout: 10000,
  autoReconnect: true,
  reconnectInitialDelay: 250,
  reconnectMaxDelay: 10000,
  reconnectFactor: 2,
  reconnectJitter: 0.5,
};

/**
 * A webwire client over one WebSocket at a time, reconnecting by itself.
 *
 * Options (all optional): storageKey, storage (default localStorage),
 * requestTimeout ms, acceptTimeout ms, autoReconnect, reconnectInitialDelay,
 * reconnectMaxDelay, reconnectFactor, reconnectJitter (0..1), WebSocket (class),
 * random (() => [0,1)), and on* callbacks for the events.
 *
 * Events (`client.on(name, fn)` or options `onName`): connected(acceptConf),
 * disconnected({reason, code, wasConnected}) (also after each failed attempt), signal({name, encoding, data}),
 * sessionCreated(session), sessionClosed(), restoreResult({ok, session?, error?}).
 */
export class Client {
  constructor(options = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.storage = options.storage ?? (typeof localStorage !== 'undefined' ? localStorage : null);
    this.WebSocketClass = options.WebSocket ?? globalThis.WebSocket;
    this.random = options.random ?? Math.random;
    this.listeners = Object.fromEntries(EVENTS.map((e) => [e, []]));
    for (const e of EVENTS) {
      const cb = options['on' + e[0].toUpperCase() + e.slice(1)];
      if (typeof cb === 'function') this.listeners[e].push(cb);
    }
    this.url = null;
    this.ws = null;
    this.state = 'idle'; // idle | connecting | restoring | ready | closed
    this.acceptConf = null;
    this.session = null;
    this.pending = new Map();
    this.waitingReady = [];
    this.nextId = 1n;
    this.attempt = 0;
    this.timers = { heartbeat: null, accept: null, reconnect: null };
    this.connectWaiter = null;
  }

  on(event, fn) {
    if (!this.listeners[event]) throw new Error(`unknown event ${event}`);
    this.listeners[event].push(fn);
    return this;
  }

  off(event, fn) {
    if (this.listeners[event]) this.listeners[event] = this.listeners[event].filter((f) => f !== fn);
    return this;
  }

  emit(event, arg) {
    for (const fn of this.listeners[event]) {
      try {
        fn(arg);
      } catch (e) {
        console.error(`webwire: ${event} handler threw`, e);
      }
    }
  }

  /** 'idle', 'connecting', 'restoring', 'ready' or 'closed'. */
  get status() {
    return this.state;
  }

  /** The stored session key, or null. */
  storedKey() {
    try {
      const key = this.storage?.getItem(this.opts.storageKey) ?? null;
      return isSessionKey(key) ? key : null;
    } catch {
      return null;
    }
  }

  storeKey(key) {
    try {
      if (key === null) this.storage?.removeItem(this.opts.storageKey);
      else this.storage?.setItem(this.opts.storageKey, key);
    } catch (e) {
      console.warn('webwire: session storage failed', e);
    }
  }

  /**
   * Opens the connection. Resolves with the accept conf once the server sent
   * it and the automatic restore of a stored session (if any) has settled;
   * rejects if this attempt fails (reconnecting goes on when enabled).
   */
  connect(url) {
    if (url !== undefined) this.url = url;
    if (!this.url) return Promise.reject(new Error('webwire: no URL to connect to'));
    if (this.state === 'ready') return Promise.resolve(this.acceptConf);
    if (this.state === 'closed') this.state = 'idle';
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = null;
    if (!this.connectWaiter) {
      let resolve, reject;
      const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      this.connectWaiter = { promise, resolve, reject };
    }
    const waiter = this.connectWaiter;
    if (this.state === 'idle') this.open();
    return waiter.promise;
  }

  open() {
    this.state = 'connecting';
    let ws;
    try {
      ws = new this.WebSocketClass(this.url);
    } catch (e) {
      this.lost(`cannot open WebSocket: ${e.message ?? e}`, null);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    // Covers the handshake too: an attempt either gets its accept conf in time or fails.
    this.timers.accept = setTimeout(() => this.fail('no accept conf within the accept timeout'), this.opts.acceptTimeout);
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws === ws) this.lost(ev.reason ? `closed: ${ev.reason}` : `closed (code ${ev.code})`, ev.code);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  /** Closes the connection for a protocol violation, with the reason. */
  fail(reason) {
    console.error(`webwire: ${reason}`);
    try {
      this.ws?.close(4002, 'protocol error');
    } catch {
      /* already closed */
    }
    this.lost(reason, 4002);
  }

  lost(reason, code) {
    const ws = this.ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === 0 || ws.readyState === 1) {
        try {
          ws.close(1000);
        } catch {
          /* ignore */
        }
      }
    }
    this.ws = null;
    const wasUp = this.state === 'ready' || this.state === 'restoring';
    const closedByUser = this.state === 'closed';
    clearTimeout(this.timers.accept);
    clearTimeout(this.timers.heartbeat);
    this.timers.accept = this.timers.heartbeat = null;
    this.acceptConf = null;
    if (!closedByUser) this.state = 'idle';
    this.failAll();
    if (this.connectWaiter) {
      this.connectWaiter.reject(new Error(`webwire: connect failed: ${reason}`));
      this.connectWaiter = null;
    }
    this.emit('disconnected', { reason, code, wasConnected: wasUp });
    if (!closedByUser && this.opts.autoReconnect) this.scheduleReconnect();
  }

  failAll() {
    const err = () => new RequestError('disconnected');
    for (const p of this.pending.values()) p.settle(err());
    this.pending.clear();
    for (const w of this.waitingReady.splice(0)) w(false);
  }

  scheduleReconnect() {
    const o = this.opts;
    const base = Math.min(o.reconnectMaxDelay, o.reconnectInitialDelay * o.reconnectFactor ** this.attempt);
    const jitter = Math.min(Math.max(o.reconnectJitter, 0), 1);
    const delay = Math.min(o.reconnectMaxDelay, base * (1 - jitter + 2 * jitter * this.random()));
    this.attempt += 1;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => {
      this.timers.reconnect = null;
      if (this.state === 'idle') this.open();
    }, delay);
  }

  /** Stops reconnecting and closes the connection; pending requests fail with 'disconnected'. */
  close() {
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = null;
    const hadSocket = this.ws !== null;
    this.state = 'closed';
    if (hadSocket) this.lost('closed by the client', 1000);
  }

  onFrame(data) {
    if (typeof data === 'string') {
      this.fail('protocol error: text frame received (only binary frames are allowed)');
      return;
    }
    let msg;
    try {
      msg = decodeMessage(data);
    } catch (e) {
      this.fail(`protocol error: ${e.message}`);
      return;
    }
    if (this.acceptConf === null) {
      if (msg.type !== 'accept-conf') {
        this.fail(`protocol error: ${msg.type} before the accept conf`);
        return;
      }
      this.onAccept(msg);
      return;
    }
    switch (msg.type) {
      case 'reply':
        this.settle(msg.id, { encoding: msg.encoding, data: decodePayload(msg.encoding, msg.data) });
        break;
      case 'error-reply':
        this.settle(msg.id, new RequestError('error', msg.code, msg.message));
        break;
      case 'special-reply':
        this.settle(msg.id, new RequestError(msg.reply));
        break;
      case 'signal':
        this.emit('signal', { name: msg.name, encoding: msg.encoding, data: decodePayload(msg.encoding, msg.data) });
        break;
      case 'session-created':
        this.session = msg.session;
        this.storeKey(msg.session.key);
        this.emit('sessionCreated', msg.session);
        break;
      case 'session-closed':
        this.dropSession();
        break;
      default:
        this.fail(`protocol error: a server does not send ${msg.type}`);
    }
  }

  onAccept(conf) {
    clearTimeout(this.timers.accept);
    this.timers.accept = null;
    if (conf.major !== PROTOCOL_MAJOR) {
      this.fail(`unsupported protocol version ${conf.major}.${conf.minor} (speaks ${PROTOCOL_MAJOR}.x)`);
      return;
    }
    this.acceptConf = conf;
    this.attempt = 0;
    this.armHeartbeat();
    this.emit('connected', conf);
    const key = this.storedKey();
    if (key === null) {
      this.becomeReady();
      return;
    }
    this.state = 'restoring';
    const ws = this.ws;
    this.sendRequest({ type: 'restore-session', key }, this.opts.requestTimeout).then(
      (reply) => {
        let session = { key, creation: null, lastLookup: null, info: null };
        if (reply.encoding !== 'binary' && reply.data.length > 0) {
          try {
            session = parseSessionInfo(reply.data);
          } catch (e) {
            console.warn('webwire: restore reply is not session JSON; keeping the key', e.message);
          }
        }
        this.session = session;
        this.emit('restoreResult', { ok: true, session });
        if (this.ws === ws) this.becomeReady();
      },
      (error) => {
        if (error.kind === 'session-not-found') {
          this.storeKey(null);
          this.session = null;
        }
        this.emit('restoreResult', { ok: false, error });
        if (this.ws === ws) this.becomeReady();
      },
    );
  }

  becomeReady() {
    this.state = 'ready';
    for (const w of this.waitingReady.splice(0)) w(true);
    if (this.connectWaiter) {
      this.connectWaiter.resolve(this.acceptConf);
      this.connectWaiter = null;
    }
  }

  dropSession() {
    this.session = null;
    this.storeKey(null);
    this.emit('sessionClosed');
  }

  send(bytes) {
    this.ws.send(bytes);
    this.armHeartbeat();
  }

  armHeartbeat() {
    clearTimeout(this.timers.heartbeat);
    this.timers.heartbeat = null;
    const ms = this.acceptConf?.readTimeoutMs ?? 0;
    if (ms > 0) {
      this.timers.heartbeat = setTimeout(() => {
        if (this.ws && this.acceptConf) this.send(encodeMessage({ type: 'heartbeat' }));
      }, ms * 0.75);
    }
  }

  newId() {
    const id = new Uint8Array(8);
    let n = this.nextId;
    this.nextId += 1n;
    for (let i = 7; i >= 0; i--) {
      id[i] = Number(n & 0xffn);
      n >>= 8n;
    }
    return id;
  }

  settle(id, outcome) {
    const key = idHex(id);
    const p = this.pending.get(key);
    if (!p) return; // timed out already: a late reply is dropped
    this.pending.delete(key);
    p.settle(outcome);
  }

  // Sends a message needing a reply (id filled in) and waits for it.
  sendRequest(msg, timeout) {
    return new Promise((resolve, reject) => {
      if (this.ws === null || this.acceptConf === null) {
        reject(new RequestError('disconnected'));
        return;
      }
      const id = this.newId();
      let bytes;
      try {
        bytes = encodeMessage({ ...msg, id });
      } catch (e) {
        reject(e);
        return;
      }
      const key = idHex(id);
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new RequestError('timeout'));
      }, timeout);
      this.pending.set(key, {
        settle: (outcome) => {
          clearTimeout(timer);
          if (outcome instanceof Error) reject(outcome);
          else resolve(outcome);
        },
      });
      this.send(bytes);
    });
  }

  whenReady(timeout) {
    if (this.state === 'ready') return Promise.resolve();
    if (this.state !== 'connecting' && this.state !== 'restoring') {
      return Promise.reject(new RequestError('disconnected'));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waitingReady.indexOf(done);
        if (i >= 0) this.waitingReady.splice(i, 1);
        reject(new RequestError('timeout'));
      }, timeout);
      const done = (ok) => {
        clearTimeout(timer);
        if (ok) resolve();
        else reject(new RequestError('disconnected'));
      };
      this.waitingReady.push(done);
    });
  }

  /**
   * Sends a request. `payload` is a string (UTF-8 unless `encoding` says
   * 'utf16'), bytes (binary unless told) or null. Resolves with
   * `{encoding, data}` (data a string for text, Uint8Array for binary);
   * rejects with RequestError. While connecting or restoring the request
   * waits (its timeout running); while disconnected it fails at once.
   */
  async request(name, payload = null, { timeout, encoding } = {}) {
    const t = timeout ?? this.opts.requestTimeout;
    const enc = encoding ?? (typeof payload === 'string' || payload == null ? 'utf8' : 'binary');
    const data = encodePayload(payload, enc);
    const start = Date.now();
    await this.whenReady(t);
    const left = Math.max(0, t - (Date.now() - start));
    return this.sendRequest({ type: 'request', name, encoding: enc, data }, left);
  }

  /** Sends a signal (fire and forget). Throws RequestError('disconnected') when not connected. */
  signal(name, payload, { encoding } = {}) {
    if (this.state !== 'ready') throw new RequestError('disconnected');
    const enc = encoding ?? (typeof payload === 'string' ? 'utf8' : 'binary');
    this.send(encodeMessage({ type: 'signal', name, encoding: enc, data: encodePayload(payload, enc) }));
  }

  /** Asks the server to close the current session; the stored key is removed. */
  async closeSession({ timeout } = {}) {
    const t = timeout ?? this.opts.requestTimeout;
    await this.whenReady(t);
    await this.sendRequest({ type: 'close-session' }, t);
    if (this.session !== null || this.storedKey() !== null) this.dropSession();
  }
}
