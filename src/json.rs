//! A small JSON writer for the response shapes, and a reader for request bodies.
//!
//! Why not serde derive for every shape: the shapes are written on the hot path and
//! each derived type adds its own code to the wasm. One writer that appends to a
//! `String` is smaller and faster, and field order is simply the order of the calls,
//! which is what the published pages fix. Strings are escaped exactly as serde_json
//! escapes them (golden tests compare with serde_json).
//!
//! Bodies are read into [`Fields`]: the top-level members of a JSON object, each kept
//! as raw JSON text until a handler asks for it with the type it expects, so every
//! wrong type gets a message naming its field, and `result` can be forwarded byte for
//! byte.

/// Appends `s` as a JSON string literal.
pub fn push_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `s` as a JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    out
}

/// Appends a decimal integer.
/// Appends `[a,b,…]` of items that are JSON already.
pub fn push_array<S: AsRef<str>>(out: &mut String, items: impl IntoIterator<Item = S>) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.as_ref());
    }
    out.push(']');
}

/// `[a,b,…]` of items that are JSON already.
pub fn array<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    push_array(&mut out, items);
    out
}

pub fn push_int(out: &mut String, n: i64) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// Writes one JSON object, member by member, in call order.
pub struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, empty: true }
    }

    /// Starts a member and returns the buffer to write its value into.
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        push_string(self.out, key);
        self.out.push(':');
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        push_string(self.key(key), value);
        self
    }

    /// A string member that is left out when unset (never sent as null).
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.str(key, value);
        }
        self
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        push_int(self.key(key), value);
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// A member whose value is already JSON text.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    pub fn end(self) {
        self.out.push('}');
    }
}

/// The members of a JSON object body, each still raw JSON text.
#[derive(Debug)]
pub struct Fields<'a> {
    /// In body order; a repeated member keeps its last value, as `JSON.parse` does.
    members: Vec<(String, &'a str)>,
}

impl<'a> Fields<'a> {
    /// Reads a body that must be one JSON object: every value is checked to be valid
    /// JSON (RFC 8259), kept as its text.
    pub fn parse(text: &'a str) -> Result<Fields<'a>, String> {
        let first = text.bytes().find(|b| !b.is_ascii_whitespace());
        if first != Some(b'{') {
            return Err(if first.is_none() {
                "request body must be a JSON object (it is empty)".to_owned()
            } else {
                "request body must be a JSON object".to_owned()
            });
        }
        let mut p = Parser { text, at: 0 };
        let members = p
            .object_members()
            .ok_or_else(|| "request body must be valid JSON".to_owned())?;
        Ok(Fields { members })
    }

    /// The raw JSON of a member; `null` counts as absent.
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, raw)| *raw)
            .filter(|raw| *raw != "null")
    }

    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => string_value(raw)
                .map(Some)
                .ok_or_else(|| format!("{key} must be a string")),
        }
    }

    pub fn required_string(&self, key: &str) -> Result<String, String> {
        self.string(key)?
            .ok_or_else(|| format!("{key} is required"))
    }

    /// A whole number (`5`, also written `5.0` or `5e0`; not `5.5` or `"5"`).
    pub fn integer(&self, key: &str) -> Result<Option<i64>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => integer_value(raw)
                .map(Some)
                .ok_or_else(|| format!("{key} must be a whole number")),
        }
    }

    /// A whole number within `range`, or the message saying so.
    pub fn integer_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, String> {
        let bad = || {
            format!(
                "{key} must be a whole number from {} to {}",
                range.start(),
                range.end()
            )
        };
        match self.integer(key) {
            Ok(Some(n)) if range.contains(&n) => Ok(Some(n)),
            Ok(None) => Ok(None),
            _ => Err(bad()),
        }
    }
}

/// The text of a JSON string value, unescaped; `None` when `raw` is not a string.
pub fn string_value(raw: &str) -> Option<String> {
    let mut p = Parser { text: raw, at: 0 };
    let s = p.string()?;
    (p.at == raw.len()).then_some(s)
}

/// A JSON number that is a whole number and fits an `i64`: `5`, and also `5.0`, `5e0`
/// or `500e-2`, since JSON Schema's `integer` and JSON encoders (Python's `5.0`) treat
/// those as the same value. Worked out on the digits, never through a float, so no
/// large value is rounded into a different one. `None` for `1.5`, `"5"`, out-of-range.
pub fn integer_value(raw: &str) -> Option<i64> {
    let (negative, unsigned) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !whole.is_empty()
        && digits_only(whole)
        && digits_only(fraction)
        && (whole == "0" || !whole.starts_with('0'))
        && !(mantissa.contains('.') && fraction.is_empty());
    if !well_formed {
        return None;
    }
    let mut digits = [whole, fraction].concat();
    if digits.bytes().all(|b| b == b'0') {
        return Some(0);
    }
    // The value is digits × 10^shift: a negative shift must only drop zeros.
    let mut shift = i64::from(exponent) - fraction.len() as i64;
    while shift < 0 {
        digits.pop().filter(|&d| d == '0')?;
        shift += 1;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() as i64 + shift > 19 {
        return None;
    }
    let magnitude: i128 = format!("{significant}{}", "0".repeat(shift as usize))
        .parse()
        .ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Nesting deeper than this is refused (as serde_json does), so a hostile body cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 128;

/// A JSON reader over a text: checks values and skips them, keeping only what a body's
/// top level needs.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// `{ "k": v, … }` at the top level, up to the end of the text.
    fn object_members(&mut self) -> Option<Vec<(String, &'a str)>> {
        self.eat(b'{')?;
        let mut members = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                self.skip_space();
                let key = self.string()?;
                self.eat(b':')?;
                self.skip_space();
                let start = self.at;
                self.value(1)?;
                members.push((key, &self.text[start..self.at]));
                self.skip_space();
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.skip_space();
        (self.at == self.text.len()).then_some(members)
    }

    /// Skips one value, checking it.
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => self.container(depth),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn container(&mut self, depth: usize) -> Option<()> {
        let close = if self.peek()? == b'{' { b'}' } else { b']' };
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(close) {
            self.at += 1;
            return Some(());
        }
        loop {
            self.skip_space();
            if close == b'}' {
                self.string()?;
                self.eat(b':')?;
                self.skip_space();
            }
            self.value(depth + 1)?;
            self.skip_space();
            match self.peek()? {
                b',' => self.at += 1,
                c if c == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.text.get(self.at..end) == Some(word)).then(|| self.at = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        let n = self.digits();
        if n == 0 || (leading_zero && n > 1) {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A string literal, unescaped.
    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let stop = rest.find(|c: char| c == '"' || c == '\\' || c < ' ')?;
            out.push_str(&rest[..stop]);
            self.at += stop;
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
                _ => return None,
            }
        }
    }

    fn escape(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                if (0xD800..0xDC00).contains(&first) {
                    // A high surrogate must be followed by its low half.
                    if self.text.get(self.at..self.at + 2) != Some("\\u") {
                        return None;
                    }
                    self.at += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))?
                } else {
                    char::from_u32(first)?
                }
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.text.get(self.at..self.at + 4)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(hex, 16).ok()
    }
}

/// Counts characters (Unicode scalar values), the unit every length limit of the API
/// is stated in.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        for s in [
            "plain",
            "quote \" and \\ backslash",
            "new\nline\ttab\rcr",
            "\u{8}\u{c}\u{0}\u{1f}\u{7f}",
            "ünïcødé ✓ 🎬",
            "slash / stays",
            "",
        ] {
            assert_eq!(string(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn objects_keep_call_order_and_leave_out_unset_members() {
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.str("b", "x")
            .opt_str("gone", None)
            .int("a", -3)
            .bool("t", true)
            .raw("r", "[1]");
        o.end();
        assert_eq!(out, r#"{"b":"x","a":-3,"t":true,"r":[1]}"#);
    }

    #[test]
    fn fields_name_the_member_that_has_the_wrong_type() {
        let f = Fields::parse(r#"{"n": "5", "s": 5, "ok": "x", "z": null}"#).unwrap();
        assert_eq!(f.integer("n").unwrap_err(), "n must be a whole number");
        assert_eq!(f.string("s").unwrap_err(), "s must be a string");
        assert_eq!(f.string("ok").unwrap().as_deref(), Some("x"));
        assert_eq!(f.string("z").unwrap(), None);
        assert_eq!(f.string("missing").unwrap(), None);
        assert_eq!(
            f.required_string("missing").unwrap_err(),
            "missing is required"
        );
        assert_eq!(
            f.integer_in("s", 1..=4).unwrap_err(),
            "s must be a whole number from 1 to 4"
        );
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_fraction_or_an_exponent() {
        for (raw, n) in [
            ("5", 5),
            ("-7", -7),
            ("0", 0),
            ("-0", 0),
            ("5.0", 5),
            ("5.000", 5),
            ("5e0", 5),
            ("5E+2", 500),
            ("500e-2", 5),
            ("1.5e1", 15),
            ("0.0", 0),
            ("0e-9", 0),
            ("9007199254740991.0", 9_007_199_254_740_991),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(integer_value(raw), Some(n), "{raw}");
        }
        for raw in [
            "1.5",
            "5e-1",
            "05",
            "1.",
            ".5",
            "1e",
            "\"5\"",
            "true",
            "",
            "-",
            "1e99",
            "9223372036854775808",
            "1e2147483648",
            "12345678901234567890e5",
        ] {
            assert_eq!(integer_value(raw), None, "{raw}");
        }
    }

    #[test]
    fn only_json_objects_are_bodies() {
        assert!(Fields::parse("[]").is_err());
        assert!(Fields::parse("").unwrap_err().contains("empty"));
        assert!(Fields::parse("{").unwrap_err().contains("valid JSON"));
        assert!(Fields::parse("{} x").unwrap_err().contains("valid JSON"));
        assert!(Fields::parse(" {\"a\":1} ").is_ok());
    }

    #[test]
    fn raw_members_keep_their_text() {
        let f = Fields::parse(r#"{"result": {"b": 1,  "a": [1.50]}}"#).unwrap();
        assert_eq!(f.raw("result").unwrap(), r#"{"b": 1,  "a": [1.50]}"#);
    }

    #[test]
    fn json_is_checked_as_serde_json_checks_it() {
        for text in [
            r#"{"a":[1,2,{"b":null}],"c":-0.5e+3,"d":"\u00e9\ud83c\udfac","e":true,"f":false}"#,
            "{}",
            " { \"a\" : 0 } ",
            r#"{"a":"\"\\\/\b\f\n\r\t"}"#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
            assert!(Fields::parse(text).is_ok(), "{text}");
        }
        for text in [
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud83c"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":1}}"#,
            r#"{"a":[}"#,
            r#"{"a":NaN}"#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_err(),
                "{text}"
            );
            assert!(Fields::parse(text).is_err(), "{text}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(Fields::parse(&deep).is_err());
    }

    #[test]
    fn strings_unescape_and_whole_numbers_are_read_exactly() {
        let f = Fields::parse(r#"{"s":"a\u00e9\ud83c\udfac\n","i":-12,"z":0,"x":1.0,"y":1e2,"big":99999999999999999999}"#).unwrap();
        assert_eq!(f.string("s").unwrap().as_deref(), Some("aé🎬\n"));
        assert_eq!(f.integer("i").unwrap(), Some(-12));
        assert_eq!(f.integer("z").unwrap(), Some(0));
        assert_eq!(f.integer("x").unwrap(), Some(1));
        assert_eq!(f.integer("y").unwrap(), Some(100));
        assert!(f.integer("big").is_err(), "out of range");
        let last = Fields::parse(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(last.integer("a").unwrap(), Some(2));
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert_eq!(char_len("héllo"), 5);
        assert_eq!(char_len("🎬"), 1);
    }
}
