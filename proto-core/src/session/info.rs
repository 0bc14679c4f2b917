//! A session as webwire sends it: the JSON body of a session-created
//! notification and of a successful restore reply,
//! `{"k":key,"c":creation,"l":lastLookup,"i":{...}}`.
//!
//! Times are unix milliseconds in the core (the driver reads the clock)
//! and RFC 3339 UTC text on the wire, in the form Go's `time.Time` writes:
//! trailing zeros of the fraction dropped (`…:00.12Z`, `…:00Z`). Reading
//! accepts any RFC 3339 time (any fraction, any offset) from 1970 to 9999,
//! kept to the millisecond. The info object is kept as its JSON text; the
//! core only checks it is a well-formed object within the limits.
//!
//! ```
//! use proto_core::session::{SessionInfo, SessionKey};
//! let info = SessionInfo {
//!     key: SessionKey::from_random([0; 48]),
//!     creation_ms: 1_795_885_200_123,
//!     last_lookup_ms: 1_795_885_200_000,
//!     info: Some(br#"{"user":"ann"}"#.as_slice().into()),
//! };
//! let json = info.to_json();
//! assert!(json.ends_with(br#""c":"2026-11-28T17:00:00.123Z","l":"2026-11-28T17:00:00Z","i":{"user":"ann"}}"#));
//! assert_eq!(SessionInfo::from_json(&json), Ok(info));
//! ```

use super::key::{KeyError, SessionKey};
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// Limits on session JSON read from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoLimits {
    /// Longest JSON text. Default 64 KiB: far more than a session's info
    /// needs (webwire keeps it in memory per connection), small enough
    /// that a hostile server cannot make a client hold much.
    pub max_json_len: usize,
    /// Deepest nesting of arrays and objects. Default 32: the parser
    /// recurses once per level.
    pub max_depth: usize,
}

impl Default for InfoLimits {
    fn default() -> Self {
        InfoLimits {
            max_json_len: 64 * 1024,
            max_depth: 32,
        }
    }
}

/// A session: key, creation and last lookup times, the application's info.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionInfo {
    /// The key.
    pub key: SessionKey,
    /// When it was created, unix milliseconds.
    pub creation_ms: u64,
    /// When it was last looked up (restored), unix milliseconds.
    pub last_lookup_ms: u64,
    /// The application's info: the text of one JSON object, or none
    /// (`"i"` is then left out, as webwire does). Written as is by
    /// [`to_json`](Self::to_json): give it through
    /// [`check_info`](Self::check_info) if it did not come from
    /// [`from_json`](Self::from_json).
    pub info: Option<Bytes>,
}

/// Why session JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InfoError {
    /// Longer than [`InfoLimits::max_json_len`].
    TooLong(usize),
    /// Not well-formed JSON, at this byte offset.
    Syntax(usize),
    /// Nested deeper than [`InfoLimits::max_depth`].
    TooDeep,
    /// Not a JSON object at the top.
    NotObject,
    /// A required field is missing (`"k"`, `"c"` or `"l"`).
    Missing(&'static str),
    /// `"k"`, `"c"` or `"l"` is not a string.
    NotString(&'static str),
    /// `"i"` is neither an object nor `null`.
    InfoNotObject,
    /// `"k"` is not a session key.
    Key(KeyError),
    /// `"c"` or `"l"` is not an RFC 3339 time from 1970 to 9999.
    Time(&'static str),
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoError::TooLong(n) => write!(f, "session JSON of {n} bytes is over the limit"),
            InfoError::Syntax(at) => write!(f, "session JSON is malformed at byte {at}"),
            InfoError::TooDeep => f.write_str("session JSON nests too deep"),
            InfoError::NotObject => f.write_str("session JSON is not an object"),
            InfoError::Missing(k) => write!(f, "session JSON has no \"{k}\""),
            InfoError::NotString(k) => write!(f, "session JSON \"{k}\" is not a string"),
            InfoError::InfoNotObject => f.write_str("session JSON \"i\" is not an object"),
            InfoError::Key(e) => write!(f, "session JSON \"k\": {e}"),
            InfoError::Time(k) => write!(f, "session JSON \"{k}\" is not an RFC 3339 time"),
        }
    }
}

impl core::error::Error for InfoError {}

impl SessionInfo {
    /// The JSON text, as the body of a session-created message or a
    /// restore reply.
    pub fn to_json(&self) -> Vec<u8> {
        let info_len = self.info.as_ref().map_or(0, |i| i.len() + 5);
        let mut out = Vec::with_capacity(128 + info_len);
        out.extend_from_slice(b"{\"k\":\"");
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(b"\",\"c\":\"");
        write_time(&mut out, self.creation_ms);
        out.extend_from_slice(b"\",\"l\":\"");
        write_time(&mut out, self.last_lookup_ms);
        out.push(b'"');
        if let Some(info) = &self.info {
            out.extend_from_slice(b",\"i\":");
            out.extend_from_slice(info);
        }
        out.push(b'}');
        out
    }

    /// Reads session JSON with the default [`InfoLimits`].
    ///
    /// # Errors
    /// See [`InfoError`].
    pub fn from_json(json: &[u8]) -> Result<Self, InfoError> {
        Self::from_json_with(json, &InfoLimits::default())
    }

    /// Reads session JSON within `limits`. Unknown fields are ignored and
    /// a repeated field's last value wins (as Go's decoder does);
    /// `"i": null` is no info.
    ///
    /// # Errors
    /// See [`InfoError`].
    pub fn from_json_with(json: &[u8], limits: &InfoLimits) -> Result<Self, InfoError> {
        if json.len() > limits.max_json_len {
            return Err(InfoError::TooLong(json.len()));
        }
        let mut p = Parser {
            s: json,
            pos: 0,
            max_depth: limits.max_depth,
        };
        p.ws();
        if p.peek() != Some(b'{') {
            p.value(0)?;
            return Err(InfoError::NotObject);
        }
        let (mut k, mut c, mut l, mut i) = (None, None, None, None);
        p.pos += 1;
        p.ws();
        if p.peek() == Some(b'}') {
            p.pos += 1;
        } else {
            loop {
                p.ws();
                let name = p.string()?;
                p.ws();
                p.expect(b':')?;
                p.ws();
                let start = p.pos;
                let is_string = p.peek() == Some(b'"');
                let field = match name.as_str() {
                    "k" | "c" | "l" if is_string => Some(p.string()?),
                    _ => {
                        p.value(1)?;
                        None
                    }
                };
                let raw = &json[start..p.pos];
                match (name.as_str(), field) {
                    ("k", Some(v)) => k = Some(v),
                    ("c", Some(v)) => c = Some(v),
                    ("l", Some(v)) => l = Some(v),
                    ("k", None) => return Err(InfoError::NotString("k")),
                    ("c", None) => return Err(InfoError::NotString("c")),
                    ("l", None) => return Err(InfoError::NotString("l")),
                    ("i", _) => {
                        i = match raw.first() {
                            Some(b'{') => Some(start..p.pos),
                            Some(b'n') => None,
                            _ => return Err(InfoError::InfoNotObject),
                        }
                    }
                    _ => {}
                }
                p.ws();
                match p.next() {
                    Some(b',') => continue,
                    Some(b'}') => break,
                    _ => return Err(InfoError::Syntax(p.pos.saturating_sub(1))),
                }
            }
        }
        p.ws();
        if p.pos != json.len() {
            return Err(InfoError::Syntax(p.pos));
        }
        let k = k.ok_or(InfoError::Missing("k"))?;
        let c = c.ok_or(InfoError::Missing("c"))?;
        let l = l.ok_or(InfoError::Missing("l"))?;
        Ok(SessionInfo {
            key: SessionKey::parse(k.as_bytes()).map_err(InfoError::Key)?,
            creation_ms: parse_time(c.as_bytes()).ok_or(InfoError::Time("c"))?,
            last_lookup_ms: parse_time(l.as_bytes()).ok_or(InfoError::Time("l"))?,
            info: i.map(|r| Bytes::copy_from_slice(&json[r])),
        })
    }

    /// Checks that `info` is the text of one JSON object within `limits`
    /// (for info that did not come from [`from_json`](Self::from_json)).
    ///
    /// # Errors
    /// [`InfoError::TooLong`], [`InfoError::Syntax`],
    /// [`InfoError::TooDeep`], [`InfoError::InfoNotObject`].
    pub fn check_info(info: &[u8], limits: &InfoLimits) -> Result<(), InfoError> {
        if info.len() > limits.max_json_len {
            return Err(InfoError::TooLong(info.len()));
        }
        let mut p = Parser {
            s: info,
            pos: 0,
            max_depth: limits.max_depth,
        };
        if p.peek() != Some(b'{') {
            return Err(InfoError::InfoNotObject);
        }
        p.value(0)?;
        if p.pos != info.len() {
            return Err(InfoError::Syntax(p.pos));
        }
        Ok(())
    }
}

/// A JSON (RFC 8259) reader over bytes: validates values, decodes strings.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn syntax(&self) -> InfoError {
        InfoError::Syntax(self.pos)
    }

    fn expect(&mut self, b: u8) -> Result<(), InfoError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), InfoError> {
        match self.peek() {
            Some(b'{') | Some(b'[') => {
                if depth >= self.max_depth {
                    return Err(InfoError::TooDeep);
                }
                let object = self.peek() == Some(b'{');
                let close = if object { b'}' } else { b']' };
                self.pos += 1;
                self.ws();
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if object {
                        self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                    }
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => continue,
                        Some(b) if b == close => return Ok(()),
                        _ => return Err(InfoError::Syntax(self.pos.saturating_sub(1))),
                    }
                }
            }
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax()),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), InfoError> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), InfoError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.syntax()),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.syntax());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.syntax());
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, InfoError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = self
                .next()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or(self.syntax())?;
            n = n << 4 | d;
        }
        Ok(n)
    }

    /// A string, decoded (the input is checked to be UTF-8 on the way).
    fn string(&mut self) -> Result<String, InfoError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            let run = core::str::from_utf8(&self.s[start..self.pos])
                .map_err(|e| InfoError::Syntax(start + e.valid_up_to()))?;
            out.push_str(run);
            match self.next() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => {
                    let c = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi) {
                                self.expect(b'\\')?;
                                self.expect(b'u')?;
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.syntax());
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            // A lone low surrogate is no character.
                            char::from_u32(cp).ok_or(self.syntax())?
                        }
                        _ => return Err(self.syntax()),
                    };
                    out.push(c);
                }
                _ => return Err(InfoError::Syntax(self.pos.saturating_sub(1))),
            }
        }
    }
}

const MS_PER_DAY: u64 = 86_400_000;
/// 9999-12-31T23:59:59.999Z, the latest time RFC 3339 can write.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    // Years start in March, so the leap day ends the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn push_num(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut n = n;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Writes `ms` (clamped to [`MAX_TIME_MS`]) as Go writes a UTC
/// `time.Time`: `YYYY-MM-DDTHH:MM:SS`, the fraction without trailing
/// zeros (none if zero), `Z`.
pub fn write_time(out: &mut Vec<u8>, ms: u64) {
    let ms = ms.min(MAX_TIME_MS);
    let (y, mo, d) = civil_from_days(ms / MS_PER_DAY);
    let in_day = ms % MS_PER_DAY;
    push_num(out, y, 4);
    out.push(b'-');
    push_num(out, mo, 2);
    out.push(b'-');
    push_num(out, d, 2);
    out.push(b'T');
    push_num(out, in_day / 3_600_000, 2);
    out.push(b':');
    push_num(out, in_day / 60_000 % 60, 2);
    out.push(b':');
    push_num(out, in_day / 1000 % 60, 2);
    let mut frac = in_day % 1000;
    if frac != 0 {
        out.push(b'.');
        let mut width = 3;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        push_num(out, frac, width);
    }
    out.push(b'Z');
}

/// Reads an RFC 3339 time (`T`/`t`, `Z`/`z` or `±HH:MM`, any fraction
/// digits, truncated to the millisecond) as unix milliseconds; `None` if
/// malformed or before 1970.
pub fn parse_time(s: &[u8]) -> Option<u64> {
    let num = |r: core::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |n, &b| n * 10 + u64::from(b - b'0')))
    };
    let sep = |i: usize, c: &[u8]| s.get(i).is_some_and(|b| c.contains(b));
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    if y < 1970 || !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut pos = 19;
    let mut frac_ms = 0;
    if sep(pos, b".") {
        pos += 1;
        let start = pos;
        while s.get(pos).is_some_and(u8::is_ascii_digit) {
            if pos - start < 3 {
                frac_ms = frac_ms * 10 + u64::from(s[pos] - b'0');
            }
            pos += 1;
        }
        let n = pos - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            frac_ms *= 10;
        }
    }
    let local =
        days_from_civil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms;
    let utc = if sep(pos, b"Zz") && s.len() == pos + 1 {
        local
    } else if sep(pos, b"+-") && s.len() == pos + 6 && sep(pos + 3, b":") {
        let (oh, om) = (num(pos + 1..pos + 3)?, num(pos + 4..pos + 6)?);
        if oh > 23 || om > 59 {
            return None;
        }
        let off = (oh * 60 + om) * 60_000;
        if s[pos] == b'+' {
            local.checked_sub(off)?
        } else {
            local + off
        }
    } else {
        return None;
    };
    (utc <= MAX_TIME_MS).then_some(utc)
}
