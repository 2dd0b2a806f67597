//! The API's nouns as types that can only hold valid values ("parse, don't validate").
//!
//! Every value that arrives from outside (path segments, JSON fields, headers) is turned
//! into one of these types at the edge; code past that point never re-checks it.

/// A user id: `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn parse(text: &str) -> Result<UserId, String> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(UserId(text.to_owned()))
        } else {
            Err("user must match [A-Za-z0-9_-]{1,64}".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest bearer token we look up; anything longer is refused unread.
pub const MAX_TOKEN_LEN: usize = 512;

/// Extracts the token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive and surrounding white space is ignored. `None` for anything else:
/// the caller answers 401 without saying which check failed.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(token)
}

/// Decodes one percent-encoded path segment. Malformed escapes and non-UTF-8 results
/// are errors, never panics.
pub fn percent_decode(segment: &str) -> Result<String, String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "malformed percent-encoding in the path".to_owned())?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the path is not valid UTF-8".to_owned())
}

/// The value of query parameter `name` in a URL (the first one, percent-decoded,
/// `+` read as a space), or `None` when absent.
pub fn query_param(url: &str, name: &str) -> Result<Option<String>, String> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let query = query.split('#').next().unwrap_or("");
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(&key.replace('+', " "))? == name {
            return percent_decode(&value.replace('+', " ")).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_trimmed() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("  bEaReR   abc  ")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer\tabc")), Some("abc"));
    }

    #[test]
    fn malformed_authorization_headers_have_no_token() {
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        for bad in [
            "",
            "Bearer",
            "Bearer   ",
            "Basic abc",
            "abc",
            "Bearer a b",
            "Bearer é",
            &long,
        ] {
            assert_eq!(bearer_token(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn user_ids_follow_the_contract_pattern() {
        assert!(UserId::parse("12345").is_ok());
        assert!(UserId::parse("a_b-C9").is_ok());
        assert!(UserId::parse(&"x".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn query_parameters_are_found_and_decoded() {
        let url = "https://x.com/admin/v1/users/1/kling/webhooks?a=1&status=fail%65d#frag";
        assert_eq!(
            query_param(url, "status").unwrap().as_deref(),
            Some("failed")
        );
        assert_eq!(query_param(url, "b").unwrap(), None);
        assert_eq!(query_param("https://x.com/p", "status").unwrap(), None);
        assert_eq!(
            query_param("https://x.com/p?status", "status")
                .unwrap()
                .as_deref(),
            Some("")
        );
        assert!(query_param("https://x.com/p?status=%zz", "status").is_err());
    }

    #[test]
    fn percent_decoding_handles_reserved_characters_and_refuses_garbage() {
        assert_eq!(percent_decode("US%3Aa%40x.com").unwrap(), "US:a@x.com");
        assert_eq!(percent_decode("plain").unwrap(), "plain");
        for bad in ["%", "%4", "%zz", "%ff", "%C3"] {
            assert!(percent_decode(bad).is_err(), "{bad:?}");
        }
    }
}
