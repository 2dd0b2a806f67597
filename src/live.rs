//! The live view's protocol: what a client sends first, what the server pushes, and
//! how pushes are spaced. Pure; `runtime::live_session` holds the sockets.
//!
//! A client opens `GET /v1/{provider}/scheduler/live` as a WebSocket and sends
//! `{"token": "<token>"}` first (the token never travels in a URL, where logs and
//! proxies keep it). The server answers `{"type":"available","body":…}` at once and
//! after every change to the user's jobs or accounts of that provider, at most four
//! times a second, and nothing while nothing changes.

use crate::json::Fields;

/// Pushes to one user's viewers of one provider are at least this far apart: at most
/// four a second, however many writes happen.
pub const MIN_PUSH_INTERVAL_MS: i64 = 250;
/// A socket that has not sent its token by then is closed.
pub const HELLO_TIMEOUT_MS: i64 = 10_000;
/// How often an open socket's token is checked again (it is also closed at once when
/// the token is revoked through the operator API).
pub const RECHECK_INTERVAL_MS: i64 = 10 * 60 * 1000;
/// The largest first message read.
pub const MAX_HELLO_BYTES: usize = 4096;

/// Close codes (the 4000-4999 range is the application's).
pub const CLOSE_BAD_TOKEN: u16 = 4401;
pub const CLOSE_BAD_HELLO: u16 = 4400;
pub const CLOSE_HELLO_TIMEOUT: u16 = 4408;
pub const CLOSE_THROTTLED: u16 = 4429;

/// When the next push may go out, given the last one.
pub fn next_push_at(last_push_ms: Option<i64>, now_ms: i64) -> i64 {
    last_push_ms.map_or(now_ms, |last| now_ms.max(last + MIN_PUSH_INTERVAL_MS))
}

/// The message a viewer receives: `{"type":"available","body":<body>}`.
pub fn available_message(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 32);
    out.push_str(r#"{"type":"available","body":"#);
    out.push_str(body);
    out.push('}');
    out
}

/// Reads the client's first message: `{"token": "<token>"}`. `Err` is the close
/// reason for anything else.
pub fn read_hello(text: &str) -> Result<String, &'static str> {
    if text.len() > MAX_HELLO_BYTES {
        return Err("first message too large");
    }
    let fields = Fields::parse(text).map_err(|_| "first message must be {\"token\": \"...\"}")?;
    fields
        .string("token")
        .ok()
        .flatten()
        .ok_or("first message must be {\"token\": \"...\"}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_are_at_most_four_a_second() {
        assert_eq!(next_push_at(None, 1_000), 1_000);
        assert_eq!(next_push_at(Some(1_000), 1_100), 1_250);
        assert_eq!(next_push_at(Some(1_000), 2_000), 2_000);
    }

    #[test]
    fn the_message_wraps_the_available_body() {
        assert_eq!(
            available_message(r#"{"executing":[],"available":[]}"#),
            r#"{"type":"available","body":{"executing":[],"available":[]}}"#
        );
    }

    #[test]
    fn the_first_message_must_carry_a_token() {
        assert_eq!(read_hello(r#"{"token":"sk_x"}"#).unwrap(), "sk_x");
        for bad in ["sk_x", "{}", r#"{"token":5}"#, "[]", &"x".repeat(5000)] {
            assert!(read_hello(bad).is_err(), "{bad}");
        }
    }
}
