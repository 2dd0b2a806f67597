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

use std::collections::BTreeMap;

use serde_json::value::RawValue;

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
    members: BTreeMap<String, &'a RawValue>,
}

impl<'a> Fields<'a> {
    /// Reads a body that must be one JSON object. A repeated member keeps its last
    /// value, as `JSON.parse` does.
    pub fn parse(text: &'a str) -> Result<Fields<'a>, String> {
        let first = text.bytes().find(|b| !b.is_ascii_whitespace());
        if first != Some(b'{') {
            return Err(if first.is_none() {
                "request body must be a JSON object (it is empty)".to_owned()
            } else {
                "request body must be a JSON object".to_owned()
            });
        }
        let members = serde_json::from_str::<BTreeMap<String, &'a RawValue>>(text)
            .map_err(|_| "request body must be valid JSON".to_owned())?;
        Ok(Fields { members })
    }

    /// The raw JSON of a member; `null` counts as absent.
    pub fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .get(key)
            .copied()
            .filter(|raw| raw.get() != "null")
    }

    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map(Some)
                .map_err(|_| format!("{key} must be a string")),
        }
    }

    pub fn required_string(&self, key: &str) -> Result<String, String> {
        self.string(key)?
            .ok_or_else(|| format!("{key} is required"))
    }

    /// A whole number (`5`, not `5.0` or `"5"`).
    pub fn integer(&self, key: &str) -> Result<Option<i64>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<i64>(raw.get())
                .map(Some)
                .map_err(|_| format!("{key} must be a whole number")),
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
        assert_eq!(f.raw("result").unwrap().get(), r#"{"b": 1,  "a": [1.50]}"#);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert_eq!(char_len("héllo"), 5);
        assert_eq!(char_len("🎬"), 1);
    }
}
