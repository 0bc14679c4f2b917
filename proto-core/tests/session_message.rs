//! The webwire 2.0 codec against golden bytes written by hand from the
//! protocol's layouts (webwire-go `message/`, webwire-js `message.js`):
//! every message type decodes from them and encodes back to them, every
//! `DecodeError` and `EncodeError` has a frame or message that causes it,
//! and no frame panics.

use bytes::Bytes;
use proto_core::session::{
    AcceptConf, DecodeError, EncodeError, Encoding, Message, Payload, RequestId, SpecialReply,
};

/// Hex with optional spaces; `"..."` quoted runs are ASCII.
fn hex(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ascii = false;
    for p in s.split('"') {
        if ascii {
            out.extend_from_slice(p.as_bytes());
        } else {
            let digits: Vec<u8> = p.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            assert!(digits.len().is_multiple_of(2), "odd hex in {p:?}");
            for pair in digits.chunks(2) {
                let s = std::str::from_utf8(pair).unwrap();
                out.push(u8::from_str_radix(s, 16).unwrap());
            }
        }
        ascii = !ascii;
    }
    out
}

const ID: RequestId = RequestId([1, 2, 3, 4, 5, 6, 7, 8]);
const ID_HEX: &str = "0102030405060708";

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

fn golden() -> Vec<(String, Message)> {
    let id = ID_HEX;
    vec![
        (
            "17 02 00 60ea0000 00200000 \"ww\"".into(),
            Message::AcceptConf(AcceptConf {
                major: 2,
                minor: 0,
                read_timeout_ms: 60_000,
                message_buffer_size: 8192,
                subprotocol: b(b"ww"),
            }),
        ),
        (
            "17 02 00 00000000 ffffffff".into(),
            Message::AcceptConf(AcceptConf {
                major: 2,
                minor: 0,
                read_timeout_ms: 0,
                message_buffer_size: u32::MAX,
                subprotocol: Bytes::new(),
            }),
        ),
        (
            format!("7f {id} 04 \"ping\" 00ff"),
            Message::Request {
                id: ID,
                name: b(b"ping"),
                payload: Payload::binary(b(&[0, 0xff])),
            },
        ),
        (
            format!("7f {id} 00 aa"),
            Message::Request {
                id: ID,
                name: Bytes::new(),
                payload: Payload::binary(b(&[0xaa])),
            },
        ),
        (
            format!("80 {id} 04 \"echo\" \"hi\""),
            Message::Request {
                id: ID,
                name: b(b"echo"),
                payload: Payload::utf8(b(b"hi")),
            },
        ),
        (
            format!("80 {id} 05 \"login\""),
            Message::Request {
                id: ID,
                name: b(b"login"),
                payload: Payload::utf8(Bytes::new()),
            },
        ),
        (
            format!("81 {id} 03 \"abc\" 00 6800 6900"),
            Message::Request {
                id: ID,
                name: b(b"abc"),
                payload: Payload::utf16(b(&[0x68, 0, 0x69, 0])),
            },
        ),
        (
            format!("81 {id} 02 \"ab\""),
            Message::Request {
                id: ID,
                name: b(b"ab"),
                payload: Payload::utf16(Bytes::new()),
            },
        ),
        (
            format!("81 {id} 01 \"a\" 00"),
            Message::Request {
                id: ID,
                name: b(b"a"),
                payload: Payload::utf16(Bytes::new()),
            },
        ),
        (
            format!("81 {id} 00 6800"),
            Message::Request {
                id: ID,
                name: Bytes::new(),
                payload: Payload::utf16(b(&[0x68, 0])),
            },
        ),
        (
            format!("bf {id} 010203"),
            Message::Reply {
                id: ID,
                payload: Payload::binary(b(&[1, 2, 3])),
            },
        ),
        (
            format!("c0 {id}"),
            Message::Reply {
                id: ID,
                payload: Payload::utf8(Bytes::new()),
            },
        ),
        (
            format!("c0 {id} \"ok\""),
            Message::Reply {
                id: ID,
                payload: Payload::utf8(b(b"ok")),
            },
        ),
        (
            format!("c1 {id} 00 6800"),
            Message::Reply {
                id: ID,
                payload: Payload::utf16(b(&[0x68, 0])),
            },
        ),
        (
            format!("c1 {id} 00"),
            Message::Reply {
                id: ID,
                payload: Payload::utf16(Bytes::new()),
            },
        ),
        (
            format!("00 {id} 0a \"DEMO_ERROR\" \"asked to fail\""),
            Message::ErrorReply {
                id: ID,
                code: b(b"DEMO_ERROR"),
                message: b(b"asked to fail"),
            },
        ),
        (
            format!("00 {id} 01 \"X\""),
            Message::ErrorReply {
                id: ID,
                code: b(b"X"),
                message: Bytes::new(),
            },
        ),
        (
            format!("00 {id} 01 \"E\" c3a9"),
            Message::ErrorReply {
                id: ID,
                code: b(b"E"),
                message: b("é".as_bytes()),
            },
        ),
        (
            format!("01 {id}"),
            Message::Special {
                id: ID,
                reply: SpecialReply::Shutdown,
            },
        ),
        (
            format!("02 {id}"),
            Message::Special {
                id: ID,
                reply: SpecialReply::InternalError,
            },
        ),
        (
            format!("03 {id}"),
            Message::Special {
                id: ID,
                reply: SpecialReply::SessionNotFound,
            },
        ),
        (
            format!("04 {id}"),
            Message::Special {
                id: ID,
                reply: SpecialReply::MaxSessionConnectionsReached,
            },
        ),
        (
            format!("05 {id}"),
            Message::Special {
                id: ID,
                reply: SpecialReply::SessionsDisabled,
            },
        ),
        (
            "3f 03 \"sig\" 01".into(),
            Message::Signal {
                name: b(b"sig"),
                payload: Payload::binary(b(&[1])),
            },
        ),
        (
            "40 00 \"x\"".into(),
            Message::Signal {
                name: Bytes::new(),
                payload: Payload::utf8(b(b"x")),
            },
        ),
        (
            "40 06 \"notify\" \"hello\"".into(),
            Message::Signal {
                name: b(b"notify"),
                payload: Payload::utf8(b(b"hello")),
            },
        ),
        (
            "41 01 \"n\" 00 6800".into(),
            Message::Signal {
                name: b(b"n"),
                payload: Payload::utf16(b(&[0x68, 0])),
            },
        ),
        (
            "41 02 \"ab\" 6800".into(),
            Message::Signal {
                name: b(b"ab"),
                payload: Payload::utf16(b(&[0x68, 0])),
            },
        ),
        (
            "41 00 6800 6900".into(),
            Message::Signal {
                name: Bytes::new(),
                payload: Payload::utf16(b(&[0x68, 0, 0x69, 0])),
            },
        ),
        (
            // {"k":"x"}: the JSON's quotes are spelled in hex.
            "15 7b 226b22 3a 227822 7d".into(),
            Message::SessionCreated {
                json: b(br#"{"k":"x"}"#),
            },
        ),
        ("16".into(), Message::SessionClosed),
        (format!("1f {id}"), Message::CloseSession { id: ID }),
        (
            format!("20 {id} \"key\""),
            Message::RestoreSession {
                id: ID,
                key: b(b"key"),
            },
        ),
        ("21".into(), Message::Heartbeat),
    ]
}

#[test]
fn every_golden_vector_decodes_and_encodes_back() {
    let vectors = golden();
    let mut types = std::collections::BTreeSet::new();
    for (h, msg) in &vectors {
        let wire = hex(h);
        types.insert(wire[0]);
        let got = Message::decode(Bytes::from(wire.clone())).unwrap_or_else(|e| panic!("{h}: {e}"));
        assert_eq!(&got, msg, "{h}");
        let mut out = Vec::new();
        msg.encode(&mut out).unwrap();
        assert_eq!(out, wire, "{h}");
        assert_eq!(msg.encoded_len(), wire.len(), "{h}");
        assert_eq!(msg.type_byte(), wire[0]);
    }
    // Every type of protocol 2.0 has at least one vector.
    let all: Vec<u8> = [
        0, 1, 2, 3, 4, 5, 21, 22, 23, 31, 32, 33, 63, 64, 65, 127, 128, 129,
    ]
    .into_iter()
    .chain([191, 192, 193])
    .collect();
    for t in all {
        assert!(types.contains(&t), "no golden vector of type {t}");
    }
}

#[test]
fn decode_is_zero_copy() {
    let wire = Bytes::from(hex(&format!("80 {ID_HEX} 04 \"echo\" \"hello\"")));
    let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
    let Message::Request { name, payload, .. } = Message::decode(wire.clone()).unwrap() else {
        panic!("not a request")
    };
    assert!(range.contains(&(name.as_ptr() as usize)));
    assert!(range.contains(&(payload.data.as_ptr() as usize)));
    assert_eq!(&payload.data[..], b"hello");
}

fn err(h: &str) -> DecodeError {
    Message::decode(Bytes::from(hex(h))).unwrap_err()
}

#[test]
fn every_decode_error() {
    let id = ID_HEX;
    assert_eq!(err(""), DecodeError::Empty);
    for t in [6u8, 20, 24, 30, 34, 62, 66, 126, 130, 190, 194, 255] {
        assert_eq!(err(&format!("{t:02x} {id}")), DecodeError::UnknownType(t));
    }
    assert_eq!(
        err(&format!("80 {id} 00")),
        DecodeError::TooShort {
            kind: "request",
            len: 10,
            min: 11
        }
    );
    assert_eq!(
        err("17 02 00 60ea0000 002000"),
        DecodeError::TooShort {
            kind: "accept conf",
            len: 10,
            min: 11
        }
    );
    assert!(matches!(
        err("41 00 68"),
        DecodeError::TooShort { kind: "signal", .. }
    ));
    assert!(matches!(
        err("3f 00"),
        DecodeError::TooShort { kind: "signal", .. }
    ));
    assert!(matches!(
        err(&format!("c1 {id}")),
        DecodeError::TooShort { kind: "reply", .. }
    ));
    assert!(matches!(
        err("bf 0102"),
        DecodeError::TooShort { kind: "reply", .. }
    ));
    assert!(matches!(
        err(&format!("00 {id} 01")),
        DecodeError::TooShort {
            kind: "error reply",
            ..
        }
    ));
    assert!(matches!(
        err(&format!("20 {id}")),
        DecodeError::TooShort {
            kind: "restore session",
            ..
        }
    ));
    assert!(matches!(
        err("15"),
        DecodeError::TooShort {
            kind: "session created",
            ..
        }
    ));
    assert_eq!(
        err(&format!("01 {id} 00")),
        DecodeError::WrongLength {
            kind: "special reply",
            len: 10,
            expected: 9
        }
    );
    assert!(matches!(
        err("03 0102"),
        DecodeError::WrongLength {
            kind: "special reply",
            ..
        }
    ));
    assert!(matches!(
        err("2100"),
        DecodeError::WrongLength {
            kind: "heartbeat",
            ..
        }
    ));
    assert!(matches!(
        err("1600"),
        DecodeError::WrongLength {
            kind: "session closed",
            ..
        }
    ));
    assert!(matches!(
        err(&format!("1f {id} 00")),
        DecodeError::WrongLength {
            kind: "close session",
            ..
        }
    ));
    assert_eq!(
        err(&format!("7f {id} 05 \"ab\"")),
        DecodeError::NameLengthPastEnd {
            name_len: 5,
            available: 2
        }
    );
    assert_eq!(
        err("3f ff \"abc\""),
        DecodeError::NameLengthPastEnd {
            name_len: 255,
            available: 3
        }
    );
    assert_eq!(
        err(&format!("00 {id} 05 \"ab\"")),
        DecodeError::NameLengthPastEnd {
            name_len: 5,
            available: 2
        }
    );
    assert_eq!(
        err(&format!("7f {id} 02 \"a\" 0a 01")),
        DecodeError::BadNameChar { at: 1, byte: 0x0a }
    );
    assert_eq!(
        err("40 01 80 \"x\""),
        DecodeError::BadNameChar { at: 0, byte: 0x80 }
    );
    assert_eq!(
        err(&format!("81 {id} 02 \"ab\" 68")),
        DecodeError::OddUtf16Payload { len: 13 }
    );
    // An odd name and no padding byte: the total is odd.
    assert_eq!(
        err(&format!("81 {id} 01 \"a\"")),
        DecodeError::OddUtf16Payload { len: 11 }
    );
    assert_eq!(
        err(&format!("c1 {id} 00 68")),
        DecodeError::OddUtf16Payload { len: 11 }
    );
    assert_eq!(err("41 00 680069"), DecodeError::OddUtf16Payload { len: 5 });
    assert_eq!(err(&format!("c1 {id} 01")), DecodeError::BadPadding(1));
    assert_eq!(err("41 01 \"n\" 07 6800"), DecodeError::BadPadding(7));
    assert_eq!(
        err(&format!("81 {id} 01 \"a\" ff 6800")),
        DecodeError::BadPadding(0xff)
    );
    assert_eq!(err("3f 02 \"ab\""), DecodeError::EmptySignalPayload);
    assert_eq!(err("41 02 \"ab\""), DecodeError::EmptySignalPayload);
    assert_eq!(err("41 01 \"a\" 00"), DecodeError::EmptySignalPayload);
    assert_eq!(err(&format!("00 {id} 00 \"x\"")), DecodeError::CodeEmpty);
    assert_eq!(
        err(&format!("00 {id} 02 \"A\" 7f")),
        DecodeError::CodeNotPrintable { at: 1, byte: 0x7f }
    );
    assert_eq!(
        err(&format!("00 {id} 01 \"A\" ff")),
        DecodeError::MessageNotUtf8
    );
    assert_eq!(
        err(&format!("20 {id} \"ab\" 80")),
        DecodeError::KeyNotAscii { at: 2 }
    );
    assert_eq!(err("15 ff"), DecodeError::SessionNotUtf8);
}

#[test]
fn decode_errors_say_what_broke() {
    assert_eq!(err("").to_string(), "empty message");
    assert_eq!(err("06").to_string(), "unknown message type 6");
    assert_eq!(
        err("80 01").to_string(),
        "request message too short: 2 bytes, at least 11"
    );
    assert_eq!(
        err("2100").to_string(),
        "heartbeat message of 2 bytes, must be 1"
    );
}

fn enc(m: Message) -> EncodeError {
    let mut out = vec![9u8];
    let e = m.encode(&mut out).unwrap_err();
    assert_eq!(out, [9], "a refused message leaves the buffer alone");
    e
}

#[test]
fn every_encode_error() {
    let long = Bytes::from(vec![b'a'; 256]);
    assert_eq!(
        enc(Message::Request {
            id: ID,
            name: long.clone(),
            payload: Payload::binary(b(b"x"))
        }),
        EncodeError::NameTooLong(256)
    );
    assert_eq!(
        enc(Message::Signal {
            name: long.clone(),
            payload: Payload::binary(b(b"x"))
        }),
        EncodeError::NameTooLong(256)
    );
    assert_eq!(
        enc(Message::Signal {
            name: b(b"a\tb"),
            payload: Payload::binary(b(b"x"))
        }),
        EncodeError::BadNameChar { at: 1, byte: 9 }
    );
    assert_eq!(
        enc(Message::Request {
            id: ID,
            name: Bytes::new(),
            payload: Payload::utf8(Bytes::new())
        }),
        EncodeError::EmptyRequest
    );
    assert_eq!(
        enc(Message::Signal {
            name: b(b"s"),
            payload: Payload::binary(Bytes::new())
        }),
        EncodeError::EmptySignalPayload
    );
    assert_eq!(
        enc(Message::Reply {
            id: ID,
            payload: Payload::utf16(b(b"abc"))
        }),
        EncodeError::OddUtf16Payload(3)
    );
    assert_eq!(
        enc(Message::Request {
            id: ID,
            name: b(b"n"),
            payload: Payload::utf16(b(b"a"))
        }),
        EncodeError::OddUtf16Payload(1)
    );
    assert_eq!(
        enc(Message::ErrorReply {
            id: ID,
            code: Bytes::new(),
            message: Bytes::new()
        }),
        EncodeError::CodeEmpty
    );
    assert_eq!(
        enc(Message::ErrorReply {
            id: ID,
            code: long,
            message: Bytes::new()
        }),
        EncodeError::CodeTooLong(256)
    );
    assert_eq!(
        enc(Message::ErrorReply {
            id: ID,
            code: b(b"\x00"),
            message: Bytes::new()
        }),
        EncodeError::CodeNotPrintable { at: 0, byte: 0 }
    );
    assert_eq!(
        enc(Message::ErrorReply {
            id: ID,
            code: b(b"E"),
            message: b(b"\xc3")
        }),
        EncodeError::MessageNotUtf8
    );
    assert_eq!(
        enc(Message::RestoreSession {
            id: ID,
            key: Bytes::new()
        }),
        EncodeError::KeyEmpty
    );
    assert_eq!(
        enc(Message::RestoreSession {
            id: ID,
            key: b(b"a\xff")
        }),
        EncodeError::KeyNotAscii { at: 1 }
    );
    assert_eq!(
        enc(Message::SessionCreated { json: Bytes::new() }),
        EncodeError::SessionEmpty
    );
    assert_eq!(
        enc(Message::SessionCreated { json: b(b"\xff") }),
        EncodeError::SessionNotUtf8
    );
}

#[test]
fn a_255_byte_name_is_the_longest() {
    let name = Bytes::from(vec![b'~'; 255]);
    let msg = Message::Signal {
        name,
        payload: Payload::utf16(b(&[1, 0])),
    };
    let wire = msg.to_bytes().unwrap();
    // type, length, 255 name bytes, padding (odd name), 2 payload bytes.
    assert_eq!(wire.len(), 1 + 1 + 255 + 1 + 2);
    assert_eq!(wire[1], 255);
    assert_eq!(Message::decode(wire).unwrap(), msg);
}

#[test]
fn no_short_frame_panics_and_what_decodes_encodes_back() {
    // Every frame of up to 3 bytes, and longer ones from a simple generator.
    let mut frames: Vec<Vec<u8>> = vec![vec![]];
    for a in 0..=255u8 {
        frames.push(vec![a]);
        for c in [0u8, 1, 0x20, 0x41, 0x7f, 0x80, 0xff] {
            frames.push(vec![a, c]);
            frames.push(vec![a, c, c]);
        }
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 40) as usize;
        let ty = [0u8, 1, 21, 23, 32, 63, 65, 127, 129, 191, 193][(x >> 8) as usize % 11];
        let mut f = vec![ty];
        f.extend((0..len).map(|i| (x >> (i % 56)) as u8 & 0x7f));
        frames.push(f);
    }
    for f in frames {
        if let Ok(m) = Message::decode(Bytes::from(f.clone())) {
            let mut out = Vec::new();
            m.encode(&mut out)
                .unwrap_or_else(|e| panic!("{f:02x?}: {e}"));
            assert_eq!(out, f);
        }
    }
}

#[test]
fn payload_constructors_set_the_encoding() {
    assert_eq!(Payload::binary(b(b"a")).encoding, Encoding::Binary);
    assert_eq!(Payload::utf8(b(b"a")).encoding, Encoding::Utf8);
    assert_eq!(Payload::utf16(b(b"ab")).encoding, Encoding::Utf16);
    assert_eq!(RequestId::from_u64(258).0, [0, 0, 0, 0, 0, 0, 1, 2]);
}

mod keys {
    use proto_core::session::{KeyError, SessionKey};

    #[test]
    fn keys_are_url_safe_base64_of_48_bytes() {
        let mut random = [0u8; 48];
        for (i, b) in random.iter_mut().enumerate() {
            *b = i as u8;
        }
        // Go's base64.URLEncoding of bytes 0..48.
        let key = SessionKey::from_random(random);
        assert_eq!(
            key.as_str(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
        );
        assert_eq!(SessionKey::from_random([0xff; 48]).as_str(), "_".repeat(64));
        assert_eq!(SessionKey::parse(key.as_str().as_bytes()), Ok(key));
        assert_eq!(key.to_string(), key.as_str());
        assert_eq!(format!("{key:?}"), "SessionKey(AAECAw…)");
    }

    #[test]
    fn received_keys_are_checked() {
        let good = "A".repeat(64);
        assert!(SessionKey::parse(good.as_bytes()).is_ok());
        assert_eq!(SessionKey::parse(b""), Err(KeyError::WrongLength(0)));
        assert_eq!(
            SessionKey::parse("A".repeat(65).as_bytes()),
            Err(KeyError::WrongLength(65))
        );
        for bad in [b'=', b'/', b'+', b'.', b' ', 0, 0x80] {
            let mut k = good.clone().into_bytes();
            k[10] = bad;
            assert_eq!(
                SessionKey::parse(&k),
                Err(KeyError::BadChar { at: 10, byte: bad })
            );
        }
        let e = SessionKey::parse(b"../x").unwrap_err();
        assert_eq!(e.to_string(), "session key of 4 bytes, must be 64");
    }
}

mod info {
    use bytes::Bytes;
    use proto_core::session::info::{parse_time, write_time, MAX_TIME_MS};
    use proto_core::session::{InfoError, InfoLimits, KeyError, SessionInfo, SessionKey};

    fn key() -> SessionKey {
        SessionKey::from_random([7; 48])
    }

    fn time(ms: u64) -> String {
        let mut out = Vec::new();
        write_time(&mut out, ms);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_are_written_as_go_writes_them() {
        // 2026-11-28T17:00:00Z is 1_795_885_200_000 ms after the epoch.
        let t = 1_795_885_200_000;
        assert_eq!(time(t), "2026-11-28T17:00:00Z");
        assert_eq!(time(t + 123), "2026-11-28T17:00:00.123Z");
        assert_eq!(time(t + 120), "2026-11-28T17:00:00.12Z");
        assert_eq!(time(t + 100), "2026-11-28T17:00:00.1Z");
        assert_eq!(time(t + 5), "2026-11-28T17:00:00.005Z");
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        // 2024-02-29 (a leap day) noon.
        assert_eq!(time(1_709_208_000_000), "2024-02-29T12:00:00Z");
        // 2000-03-01: 2000 is a leap year (divisible by 400).
        assert_eq!(time(951_868_800_000), "2000-03-01T00:00:00Z");
        assert_eq!(time(MAX_TIME_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(time(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn times_are_read_in_any_rfc3339_form() {
        let t = 1_795_885_200_000;
        assert_eq!(parse_time(b"2026-11-28T17:00:00Z"), Some(t));
        assert_eq!(parse_time(b"2026-11-28t17:00:00.5z"), Some(t + 500));
        assert_eq!(parse_time(b"2026-11-28T17:00:00.123456789Z"), Some(t + 123));
        assert_eq!(parse_time(b"2026-11-28T18:30:00.1+01:30"), Some(t + 100));
        assert_eq!(parse_time(b"2026-11-28T12:00:00-05:00"), Some(t));
        for bad in [
            &b"2026-11-28T17:00:00"[..],
            b"2026-11-28 17:00:00Z",
            b"2026-02-29T00:00:00Z",
            b"2026-13-01T00:00:00Z",
            b"2026-11-31T00:00:00Z",
            b"2026-11-28T24:00:00Z",
            b"2026-11-28T17:00:60Z",
            b"2026-11-28T17:00:00.Z",
            b"2026-11-28T17:00:00Zx",
            b"2026-11-28T17:00:00+0100",
            b"1969-12-31T23:59:59Z",
            b"1970-01-01T00:30:00+01:00",
            b"+026-11-28T17:00:00Z",
            b"",
        ] {
            assert_eq!(parse_time(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let mut ms = 0u64;
        while ms < MAX_TIME_MS {
            assert_eq!(parse_time(time(ms).as_bytes()), Some(ms), "{ms}");
            ms = ms * 3 + 7_777_777;
        }
    }

    #[test]
    fn session_json_round_trips() {
        let k = key();
        let s = SessionInfo {
            key: k,
            creation_ms: 1_795_885_200_123,
            last_lookup_ms: 1_795_885_260_000,
            info: Some(Bytes::from_static(
                br#"{"user":"ann","n":[1,2.5e3,null,true]}"#,
            )),
        };
        let json = s.to_json();
        let want = format!(
            r#"{{"k":"{}","c":"2026-11-28T17:00:00.123Z","l":"2026-11-28T17:01:00Z","i":{{"user":"ann","n":[1,2.5e3,null,true]}}}}"#,
            k.as_str()
        );
        assert_eq!(String::from_utf8(json.clone()).unwrap(), want);
        assert_eq!(SessionInfo::from_json(&json).unwrap(), s);
        let none = SessionInfo { info: None, ..s };
        let json = none.to_json();
        assert!(!String::from_utf8_lossy(&json).contains("\"i\""));
        assert_eq!(SessionInfo::from_json(&json).unwrap(), none);
    }

    #[test]
    fn session_json_from_go_is_read() {
        let k = key();
        // What Go's json.Marshal writes for a local time with nanoseconds,
        // spaced out and with an unknown field and escapes.
        let json = format!(
            " {{ \"x\" : {{\"a\":[]}}, \"k\" : \"{}\", \"c\":\"2026-11-28T18:00:00.123456789+01:00\",\n\"l\":\"2026-11-28T17:00:00Z\", \"i\" : {{\"u\\u00e9\":\"\\ud83d\\ude00\"}} }} ",
            k.as_str()
        );
        let s = SessionInfo::from_json(json.as_bytes()).unwrap();
        assert_eq!(s.key, k);
        assert_eq!(s.creation_ms, 1_795_885_200_123);
        assert_eq!(s.last_lookup_ms, 1_795_885_200_000);
        assert_eq!(
            s.info.as_deref(),
            Some(&br#"{"u\u00e9":"\ud83d\ude00"}"#[..])
        );
        let null = format!(
            r#"{{"k":"{}","c":"2026-11-28T17:00:00Z","l":"2026-11-28T17:00:00Z","i":null}}"#,
            k.as_str()
        );
        assert_eq!(SessionInfo::from_json(null.as_bytes()).unwrap().info, None);
    }

    #[test]
    fn bad_session_json_is_refused_with_a_reason() {
        let k = key();
        let ks = k.as_str();
        let t = "2026-11-28T17:00:00Z";
        let e = |s: &str| SessionInfo::from_json(s.as_bytes()).unwrap_err();
        assert_eq!(e("[]"), InfoError::NotObject);
        assert_eq!(e("\"x\""), InfoError::NotObject);
        assert_eq!(e("{"), InfoError::Syntax(1));
        assert_eq!(e(""), InfoError::Syntax(0));
        assert!(matches!(e("{\"k\":1,}"), InfoError::NotString("k")));
        assert!(matches!(
            e(&format!(r#"{{"k":"{ks}","c":"{t}","l":"{t}"}} x"#)),
            InfoError::Syntax(_)
        ));
        assert_eq!(
            e(&format!(r#"{{"c":"{t}","l":"{t}"}}"#)),
            InfoError::Missing("k")
        );
        assert_eq!(
            e(&format!(r#"{{"k":"{ks}","l":"{t}"}}"#)),
            InfoError::Missing("c")
        );
        assert_eq!(
            e(&format!(r#"{{"k":"{ks}","c":"{t}"}}"#)),
            InfoError::Missing("l")
        );
        assert_eq!(
            e(&format!(r#"{{"k":"{ks}","c":5,"l":"{t}"}}"#)),
            InfoError::NotString("c")
        );
        assert_eq!(
            e(&format!(r#"{{"k":"{ks}","c":"{t}","l":"{t}","i":[1]}}"#)),
            InfoError::InfoNotObject
        );
        assert_eq!(
            e(&format!(r#"{{"k":"short","c":"{t}","l":"{t}"}}"#)),
            InfoError::Key(KeyError::WrongLength(5))
        );
        assert_eq!(
            e(&format!(r#"{{"k":"{ks}","c":"yesterday","l":"{t}"}}"#)),
            InfoError::Time("c")
        );
        assert_eq!(
            e(&format!(
                r#"{{"k":"{ks}","c":"{t}","l":"1969-01-01T00:00:00Z"}}"#
            )),
            InfoError::Time("l")
        );
        for bad in [
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            "{\"a\":\"\n\"}",
            r#"{"a" 1}"#,
            r#"{"a":[1 2]}"#,
            r#"{a:1}"#,
        ] {
            assert!(matches!(e(bad), InfoError::Syntax(_)), "{bad}");
        }
        assert!(matches!(
            SessionInfo::from_json(b"{\"a\":\"\xff\"}"),
            Err(InfoError::Syntax(6))
        ));
        let deep = format!("{{\"i\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(e(&deep), InfoError::TooDeep);
        let limits = InfoLimits {
            max_json_len: 10,
            ..InfoLimits::default()
        };
        assert_eq!(
            SessionInfo::from_json_with(&[b' '; 11], &limits),
            Err(InfoError::TooLong(11))
        );
        assert_eq!(e("{}").to_string(), "session JSON has no \"k\"");
    }

    #[test]
    fn info_objects_are_checked() {
        let l = InfoLimits::default();
        assert_eq!(SessionInfo::check_info(br#"{"user":"ann"}"#, &l), Ok(()));
        assert_eq!(
            SessionInfo::check_info(b"[]", &l),
            Err(InfoError::InfoNotObject)
        );
        assert_eq!(
            SessionInfo::check_info(b"{} ", &l),
            Err(InfoError::Syntax(2))
        );
        assert!(SessionInfo::check_info(br#"{"a":}"#, &l).is_err());
    }
}
