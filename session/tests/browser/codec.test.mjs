// Golden byte vectors for every webwire 2.0 message type, written by hand from
// the layouts in the session plan, both ways; and malformed input rejected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeMessage, encodeMessage, encodePayload, decodePayload, parseSessionInfo,
  isSessionKey, ProtocolError,
} from '../../web/webwire.js';

const ID = [1, 2, 3, 4, 5, 6, 7, 8];
const id = () => new Uint8Array(ID);
const u8 = (...parts) => new Uint8Array(parts.flat());
const ascii = (s) => Array.from(s, (c) => c.charCodeAt(0));
const KEY = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';

// [what, message object, its bytes]
const GOLDEN = [
  ['error reply', { type: 'error-reply', id: id(), code: 'E1', message: 'oops' },
    u8(0, ID, 2, 0x45, 0x31, 0x6f, 0x6f, 0x70, 0x73)],
  ['error reply, UTF-8 message', { type: 'error-reply', id: id(), code: 'X', message: 'é' },
    u8(0, ID, 1, 0x58, 0xc3, 0xa9)],
  ['error reply, no message', { type: 'error-reply', id: id(), code: 'NO_SESSION', message: '' },
    u8(0, ID, 10, ascii('NO_SESSION'))],
  ['shutdown', { type: 'special-reply', id: id(), reply: 'shutdown' }, u8(1, ID)],
  ['internal error', { type: 'special-reply', id: id(), reply: 'internal' }, u8(2, ID)],
  ['session not found', { type: 'special-reply', id: id(), reply: 'session-not-found' }, u8(3, ID)],
  ['max connections', { type: 'special-reply', id: id(), reply: 'max-connections' }, u8(4, ID)],
  ['sessions disabled', { type: 'special-reply', id: id(), reply: 'sessions-disabled' }, u8(5, ID)],
  ['session closed', { type: 'session-closed' }, u8(22)],
  ['accept conf, subprotocol', {
    type: 'accept-conf', major: 2, minor: 0, readTimeoutMs: 10000, messageBufferSize: 65536,
    subprotocol: new Uint8Array(ascii('weft')),
  }, u8(23, 2, 0, 0x10, 0x27, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, ascii('weft'))],
  ['accept conf, little-endian fields, no subprotocol', {
    type: 'accept-conf', major: 2, minor: 0, readTimeoutMs: 0x12345678, messageBufferSize: 0xfffffffe,
    subprotocol: new Uint8Array(0),
  }, u8(23, 2, 0, 0x78, 0x56, 0x34, 0x12, 0xfe, 0xff, 0xff, 0xff)],
  ['close session', { type: 'close-session', id: id() }, u8(31, ID)],
  ['restore session', { type: 'restore-session', id: id(), key: 'abc' }, u8(32, ID, 0x61, 0x62, 0x63)],
  ['heartbeat', { type: 'heartbeat' }, u8(33)],
  ['signal binary', { type: 'signal', name: 'abc', encoding: 'binary', data: u8(0xff, 0x00) },
    u8(63, 3, 0x61, 0x62, 0x63, 0xff, 0x00)],
  ['signal UTF-8', { type: 'signal', name: 'note', encoding: 'utf8', data: u8(0x68, 0xc3, 0xa9) },
    u8(64, 4, ascii('note'), 0x68, 0xc3, 0xa9)],
  ['signal UTF-8 without a name', { type: 'signal', name: '', encoding: 'utf8', data: u8(0x21) }, u8(64, 0, 0x21)],
  ['signal UTF-16, odd name: padding', { type: 'signal', name: 'x', encoding: 'utf16', data: u8(0x68, 0, 0x69, 0) },
    u8(65, 1, 0x78, 0, 0x68, 0x00, 0x69, 0x00)],
  ['signal UTF-16, even name: no padding', { type: 'signal', name: 'xy', encoding: 'utf16', data: u8(0x41, 0) },
    u8(65, 2, 0x78, 0x79, 0x41, 0x00)],
  ['request binary', { type: 'request', id: id(), name: 'echo', encoding: 'binary', data: u8(1, 2, 3) },
    u8(127, ID, 4, ascii('echo'), 1, 2, 3)],
  ['request UTF-8', { type: 'request', id: id(), name: 'login', encoding: 'utf8', data: u8(ascii('ada')) },
    u8(128, ID, 5, ascii('login'), ascii('ada'))],
  ['request with a name only', { type: 'request', id: id(), name: 'whoami', encoding: 'utf8', data: u8() },
    u8(128, ID, 6, ascii('whoami'))],
  ['request with a payload only', { type: 'request', id: id(), name: '', encoding: 'binary', data: u8(9) },
    u8(127, ID, 0, 9)],
  ['request UTF-16, odd name: padding', { type: 'request', id: id(), name: 'abc', encoding: 'utf16', data: u8(0x5a, 0) },
    u8(129, ID, 3, ascii('abc'), 0, 0x5a, 0x00)],
  ['request UTF-16, even name', { type: 'request', id: id(), name: 'ab', encoding: 'utf16', data: u8(0xac, 0x20) },
    u8(129, ID, 2, ascii('ab'), 0xac, 0x20)],
  ['reply binary', { type: 'reply', id: id(), encoding: 'binary', data: u8(0xde, 0xad) }, u8(191, ID, 0xde, 0xad)],
  ['reply UTF-8', { type: 'reply', id: id(), encoding: 'utf8', data: u8(ascii('ok')) }, u8(192, ID, ascii('ok'))],
  ['reply UTF-8, empty', { type: 'reply', id: id(), encoding: 'utf8', data: u8() }, u8(192, ID)],
  ['reply UTF-16: padding always', { type: 'reply', id: id(), encoding: 'utf16', data: u8(0x6f, 0, 0x6b, 0) },
    u8(193, ID, 0, 0x6f, 0x00, 0x6b, 0x00)],
  ['reply UTF-16, empty', { type: 'reply', id: id(), encoding: 'utf16', data: u8() }, u8(193, ID, 0)],
];

for (const [what, msg, bytes] of GOLDEN) {
  test(`encode: ${what}`, () => {
    assert.deepEqual(encodeMessage(msg), bytes);
  });
  test(`decode: ${what}`, () => {
    assert.deepEqual(decodeMessage(bytes), msg);
    // An ArrayBuffer (what a browser WebSocket hands over) decodes the same.
    assert.deepEqual(decodeMessage(bytes.slice().buffer), msg);
  });
}

const SESSION_JSON = `{"k":"${KEY}","c":"2026-11-28T17:00:00.123Z","l":"2026-11-28T17:05:00Z","i":{"user":"ada"}}`;

test('session created: golden bytes both ways, JSON parsed', () => {
  const bytes = u8(21, ascii(SESSION_JSON));
  assert.deepEqual(encodeMessage({ type: 'session-created', json: SESSION_JSON }), bytes);
  const m = decodeMessage(bytes);
  assert.equal(m.type, 'session-created');
  assert.equal(m.json, SESSION_JSON);
  assert.equal(m.session.key, KEY);
  assert.equal(m.session.creation.toISOString(), '2026-11-28T17:00:00.123Z');
  assert.equal(m.session.lastLookup.toISOString(), '2026-11-28T17:05:00.000Z');
  assert.deepEqual(m.session.info, { user: 'ada' });
});

test('session created without info: info is null', () => {
  const json = `{"k":"${KEY}","c":"2026-11-28T17:00:00Z","l":"2026-11-28T17:00:00Z"}`;
  assert.equal(decodeMessage(u8(21, ascii(json))).session.info, null);
});

const MALFORMED = [
  ['empty', u8()],
  ['unknown type 6', u8(6, ID)],
  ['unknown type 255', u8(255, ID)],
  ['error reply, 9 bytes', u8(0, ID)],
  ['error reply, 10 bytes', u8(0, ID, 1)],
  ['error reply, code length 0', u8(0, ID, 0, 0x41)],
  ['error reply, code longer than the message', u8(0, ID, 5, 0x41)],
  ['error reply, code not printable', u8(0, ID, 1, 0x7f)],
  ['error reply, code byte above ASCII', u8(0, ID, 1, 0xc3)],
  ['error reply, message not UTF-8', u8(0, ID, 1, 0x41, 0xff)],
  ['special reply, 8 bytes', u8(1, 1, 2, 3, 4, 5, 6, 7)],
  ['special reply, 10 bytes', u8(3, ID, 0)],
  ['session created, no JSON', u8(21)],
  ['session created, not JSON', u8(21, ascii('{"k":'))],
  ['session created, not UTF-8', u8(21, 0xff)],
  ['session created, JSON array', u8(21, ascii('[1]'))],
  ['session created, short key', u8(21, ascii('{"k":"abc"}'))],
  ['session created, bad time', u8(21, ascii(`{"k":"${KEY}","c":"yesterday"}`))],
  ['session created, info not an object', u8(21, ascii(`{"k":"${KEY}","i":3}`))],
  ['session closed, 2 bytes', u8(22, 0)],
  ['accept conf, 10 bytes', u8(23, 2, 0, 0, 0, 0, 0, 0, 0, 0)],
  ['close session, 8 bytes', u8(31, 1, 2, 3, 4, 5, 6, 7)],
  ['close session, 10 bytes', u8(31, ID, 0)],
  ['restore session, no key', u8(32, ID)],
  ['restore session, key not 7-bit', u8(32, ID, 0x80)],
  ['heartbeat, 2 bytes', u8(33, 0)],
  ['signal, 2 bytes', u8(64, 0)],
  ['signal, name longer than the message', u8(64, 5, 0x61)],
  ['signal, no payload', u8(64, 1, 0x61)],
  ['signal, name not printable', u8(63, 1, 0x01, 0x41)],
  ['signal UTF-8, payload not UTF-8', u8(64, 1, 0x61, 0xc3)],
  ['signal UTF-16, odd name without padding', u8(65, 1, 0x78, 0x68, 0x00)],
  ['signal UTF-16, padding not 0', u8(65, 1, 0x78, 0x01, 0x68, 0x00)],
  ['signal UTF-16, odd payload', u8(65, 2, 0x78, 0x79, 0x41)],
  ['signal UTF-16, no payload', u8(65, 2, 0x78, 0x79)],
  ['signal UTF-16, lone surrogate', u8(65, 2, 0x78, 0x79, 0x00, 0xd8)],
  ['request, 9 bytes', u8(128, ID)],
  ['request, name longer than the message', u8(128, ID, 9, 0x61)],
  ['request, neither name nor payload', u8(128, ID, 0)],
  ['request, name not printable', u8(127, ID, 1, 0x0a, 1)],
  ['request UTF-8, payload not UTF-8', u8(128, ID, 1, 0x61, 0xe2, 0x82)],
  ['request UTF-16, odd payload', u8(129, ID, 2, 0x61, 0x62, 0x41)],
  ['request UTF-16, odd name without padding', u8(129, ID, 1, 0x61)],
  ['request UTF-16, padding not 0', u8(129, ID, 1, 0x61, 7, 0x41, 0)],
  ['reply, 8 bytes', u8(192, 1, 2, 3, 4, 5, 6, 7)],
  ['reply UTF-8, not UTF-8', u8(192, ID, 0xff)],
  ['reply UTF-16, no padding byte', u8(193, ID)],
  ['reply UTF-16, padding not 0', u8(193, ID, 1, 0x41, 0x00)],
  ['reply UTF-16, odd payload', u8(193, ID, 0, 0x41)],
];

for (const [what, bytes] of MALFORMED) {
  test(`decode rejects: ${what}`, () => {
    assert.throws(() => decodeMessage(bytes), ProtocolError);
  });
}

const UNENCODABLE = [
  ['request id of 7 bytes', { type: 'request', id: u8(1, 2, 3, 4, 5, 6, 7), name: 'a', encoding: 'utf8', data: u8() }],
  ['request name not ASCII', { type: 'request', id: id(), name: 'né', encoding: 'utf8', data: u8() }],
  ['request name of 256 bytes', { type: 'request', id: id(), name: 'a'.repeat(256), encoding: 'utf8', data: u8() }],
  ['request without name and payload', { type: 'request', id: id(), name: '', encoding: 'binary', data: u8() }],
  ['request UTF-16 odd payload', { type: 'request', id: id(), name: 'a', encoding: 'utf16', data: u8(1) }],
  ['request unknown encoding', { type: 'request', id: id(), name: 'a', encoding: 'latin1', data: u8(1) }],
  ['reply UTF-16 odd payload', { type: 'reply', id: id(), encoding: 'utf16', data: u8(1, 2, 3) }],
  ['error reply without code', { type: 'error-reply', id: id(), code: '', message: 'x' }],
  ['error reply code with newline', { type: 'error-reply', id: id(), code: 'A\n', message: '' }],
  ['signal without payload', { type: 'signal', name: 'a', encoding: 'binary', data: u8() }],
  ['signal UTF-16 with 1 byte', { type: 'signal', name: 'a', encoding: 'utf16', data: u8(1) }],
  ['unknown special reply', { type: 'special-reply', id: id(), reply: 'nope' }],
  ['restore without key', { type: 'restore-session', id: id(), key: '' }],
  ['restore key not 7-bit', { type: 'restore-session', id: id(), key: 'ü' }],
  ['accept conf timeout beyond u32', { type: 'accept-conf', major: 2, minor: 0, readTimeoutMs: 2 ** 32, messageBufferSize: 0 }],
  ['unknown type', { type: 'nope' }],
];

for (const [what, msg] of UNENCODABLE) {
  test(`encode rejects: ${what}`, () => {
    assert.throws(() => encodeMessage(msg), ProtocolError);
  });
}

test('payload helpers: UTF-8, UTF-16 little-endian with a surrogate pair, binary', () => {
  assert.deepEqual(encodePayload('é', 'utf8'), u8(0xc3, 0xa9));
  assert.deepEqual(encodePayload('€😀', 'utf16'), u8(0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde));
  assert.equal(decodePayload('utf16', u8(0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde)), '€😀');
  assert.equal(decodePayload('utf8', u8(0xc3, 0xa9)), 'é');
  assert.deepEqual(decodePayload('binary', u8(1, 2)), u8(1, 2));
  assert.deepEqual(encodePayload(null, 'utf8'), u8());
  assert.throws(() => encodePayload(u8(1), 'utf16'), ProtocolError);
});

test('session keys: 64 chars of URL-safe base64 only', () => {
  assert.equal(isSessionKey(KEY), true);
  assert.equal(isSessionKey(KEY.slice(1)), false);
  assert.equal(isSessionKey(KEY.slice(1) + '+'), false);
  assert.equal(isSessionKey(KEY.slice(1) + '='), false);
  assert.equal(isSessionKey(null), false);
  assert.throws(() => parseSessionInfo('{"k":1}'), ProtocolError);
});
