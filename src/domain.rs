//! The API's nouns as types that can only hold valid values ("parse, don't validate").
//!
//! Every value that arrives from outside (path segments, JSON fields, headers) is turned
//! into one of these types at the edge; code past that point never re-checks it.

use std::fmt;

/// An upstream video provider. Adding a third provider means a variant here, its
/// account-name rule in [`AccountName::parse`], and its shapes in `shapes`/`webhook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Kling,
    Dreamina,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Kling, Provider::Dreamina];

    pub fn parse(text: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Kling => "kling",
            Provider::Dreamina => "dreamina",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// An upstream account name: an email for Kling, `REGION:email` for Dreamina.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(provider: Provider, text: &str) -> Result<AccountName, String> {
        let valid = match provider {
            Provider::Kling => is_email(text),
            Provider::Dreamina => match text.split_once(':') {
                Some((region, email)) => {
                    region.len() == 2
                        && region.bytes().all(|b| b.is_ascii_uppercase())
                        && is_email(email)
                }
                None => false,
            },
        };
        if valid {
            Ok(AccountName(text.to_owned()))
        } else {
            Err(match provider {
                Provider::Kling => format!("invalid Kling account {text:?}: expected an email"),
                Provider::Dreamina => format!(
                    "invalid Dreamina account {text:?}: expected REGION:email, e.g. US:someone@example.com"
                ),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pragmatic email check: one `@`, a non-empty local part, a dotted domain, no
/// white space, control characters or path/query delimiters, at most 254 bytes.
fn is_email(text: &str) -> bool {
    if text.len() > 254 {
        return false;
    }
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let clean = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '@' | '/' | '?' | '#' | '\\' | ':'))
    };
    clean(local)
        && clean(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// The largest integer a JSON number keeps exactly in JavaScript clients (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// A job's identity within one provider: a Kling task id or a Dreamina jobid.
/// Stored and compared as text; Kling ids are canonical decimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId(String);

impl JobId {
    /// A Kling task id: a positive integer up to 2^53 - 1, in canonical decimal form.
    pub fn kling(id: u64) -> Result<JobId, String> {
        if (1..=MAX_SAFE_INTEGER).contains(&id) {
            Ok(JobId(id.to_string()))
        } else {
            Err("id must be a positive integer".to_owned())
        }
    }

    /// A Kling task id from a path segment: digits only, no sign, no leading zero.
    pub fn parse_kling_text(text: &str) -> Result<JobId, String> {
        let canonical = !text.is_empty()
            && text.len() <= 16
            && text.bytes().all(|b| b.is_ascii_digit())
            && !text.starts_with('0');
        match text.parse::<u64>() {
            Ok(id) if canonical => JobId::kling(id),
            _ => Err("task_id must be a positive integer".to_owned()),
        }
    }

    /// A Dreamina jobid: 1 to 512 visible ASCII characters, no `/` (a generated one
    /// embeds the user and the account, so it can be long).
    pub fn parse_dreamina(text: &str) -> Result<JobId, String> {
        let ok = (1..=512).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
        if ok {
            Ok(JobId(text.to_owned()))
        } else {
            Err("jobid must be 1 to 512 visible ASCII characters without '/'".to_owned())
        }
    }

    /// The job id as a path segment of either provider.
    pub fn parse_for(provider: Provider, text: &str) -> Result<JobId, String> {
        match provider {
            Provider::Kling => JobId::parse_kling_text(text),
            Provider::Dreamina => JobId::parse_dreamina(text),
        }
    }

    /// Rebuilds an id read back from our own storage (already validated on the way in).
    pub fn from_stored(text: String) -> JobId {
        JobId(text)
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

/// Checks a webhook `replyUrl`: absolute http(s), at most 2048 characters, a host,
/// no user info, no white space or control characters.
pub fn validate_reply_url(url: &str) -> Result<(), String> {
    const BAD: &str =
        "replyUrl must be an absolute http(s) URL of at most 2048 characters without user info";
    if url.len() > 2048 || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BAD.to_owned());
    }
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(BAD.to_owned());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once(':').map_or(authority, |(h, port)| {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            authority
        }
    });
    if authority.contains('@') || host.is_empty() {
        return Err(BAD.to_owned());
    }
    Ok(())
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
    fn kling_accounts_are_emails() {
        assert!(AccountName::parse(Provider::Kling, "a@x.com").is_ok());
        for bad in [
            "",
            "a",
            "a@x",
            "@x.com",
            "a@.com",
            "a@x.com.",
            "a b@x.com",
            "a@b@x.com",
            "a/b@x.com",
        ] {
            assert!(AccountName::parse(Provider::Kling, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dreamina_accounts_carry_a_two_letter_region() {
        assert!(AccountName::parse(Provider::Dreamina, "US:someone@example.com").is_ok());
        for bad in [
            "someone@example.com",
            "us:a@x.com",
            "USA:a@x.com",
            "U:a@x.com",
            "US:",
            "US:a",
        ] {
            assert!(
                AccountName::parse(Provider::Dreamina, bad).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn kling_task_ids_are_canonical_positive_integers() {
        assert_eq!(
            JobId::parse_kling_text("123456789").unwrap().as_str(),
            "123456789"
        );
        for bad in [
            "",
            "0",
            "-1",
            "1.5",
            "abc",
            "007",
            "+5",
            "99999999999999999999",
            "9007199254740992",
        ] {
            assert!(JobId::parse_kling_text(bad).is_err(), "{bad:?}");
        }
        assert!(JobId::kling(MAX_SAFE_INTEGER).is_ok());
        assert!(JobId::kling(0).is_err());
    }

    #[test]
    fn dreamina_jobids_are_visible_ascii_without_slashes() {
        assert!(JobId::parse_dreamina("j0223140530123456789v-u12345-US:a@x.com:dreamina").is_ok());
        for bad in ["", "a/b", "a b", &"j".repeat(513)] {
            assert!(JobId::parse_dreamina(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reply_urls_must_be_absolute_http_without_user_info() {
        assert!(validate_reply_url("https://example.com/webhook").is_ok());
        assert!(validate_reply_url("http://127.0.0.1:8080/hook?x=1").is_ok());
        let long = format!("https://x.com/{}", "a".repeat(2040));
        for bad in [
            "",
            "/relative",
            "ftp://x.com/",
            "https://",
            "https://user:pw@x.com/",
            "https://user@x.com/",
            "https://x.com/a b",
            "javascript:alert(1)",
            &long,
        ] {
            assert!(validate_reply_url(bad).is_err(), "{bad:?}");
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
