//! API tokens: how they are made, digested and compared. Only the SHA-256 digest of a
//! token is ever stored (Workers KV key `token:<hex digest>`); the raw token is shown
//! once, when issued, and never logged.

use crate::base64::encode_url_safe;
use sha2::{Digest, Sha256};

/// Prefix of issued tokens: lets people (and secret scanners) recognise them.
pub const TOKEN_PREFIX: &str = "sk_";

/// A new token from 32 random bytes (256 bits): `sk_` + 43 URL-safe characters.
pub fn token_from_random(bytes: &[u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", encode_url_safe(bytes))
}

pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The KV key under which a token's owner is stored.
pub fn kv_key(token: &str) -> String {
    let mut key = String::with_capacity(6 + 64);
    key.push_str("token:");
    push_hex(&mut key, &digest(token));
    key
}

/// Appends `bytes` as lowercase hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

/// Compares a presented secret with the expected one in time independent of where
/// they differ: both are digested first (fixed length), then every byte is compared.
pub fn constant_time_eq(presented: &str, expected: &str) -> bool {
    let (a, b) = (digest(presented), digest(expected));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// How long an isolate trusts a token it verified against KV without asking again.
pub const CACHE_TTL_MS: i64 = 10_000;
/// Slots of the cache: at most this many tokens are remembered at once.
pub const CACHE_CAPACITY: usize = 4096;

/// Tokens this isolate verified recently: KV key (digest, never the token) to user.
/// Only successes are cached, so a flood of unknown tokens cannot fill it and a new
/// token works at once. Revocation through this isolate removes the entry at once;
/// other isolates notice within [`CACHE_TTL_MS`] (on top of KV's own propagation).
///
/// Direct-mapped: a key's slot comes from its digest, and a new key takes the slot
/// over. Bounded, constant time, and no map type in the wasm for it.
#[derive(Debug)]
pub struct TokenCache {
    slots: Vec<Option<(String, String, i64)>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            slots: vec![None; CACHE_CAPACITY],
        }
    }
}

impl TokenCache {
    /// The slot of a key: its digest's last hex digits (digests are uniform).
    fn slot(key: &str) -> usize {
        let tail = key.as_bytes().iter().rev().take(4);
        tail.fold(0usize, |acc, b| acc * 31 + usize::from(*b)) % CACHE_CAPACITY
    }

    pub fn get(&self, key: &str, now_ms: i64) -> Option<&str> {
        match &self.slots[Self::slot(key)] {
            Some((k, user, expires)) if k == key && *expires > now_ms => Some(user),
            _ => None,
        }
    }

    pub fn put(&mut self, key: String, user: String, now_ms: i64) {
        let slot = Self::slot(&key);
        self.slots[slot] = Some((key, user, now_ms + CACHE_TTL_MS));
    }

    pub fn remove(&mut self, key: &str) {
        let slot = Self::slot(key);
        if self.slots[slot].as_ref().is_some_and(|(k, _, _)| k == key) {
            self.slots[slot] = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_url_safe_and_carry_256_bits() {
        let token = token_from_random(&[0xfb; 32]);
        assert!(token.starts_with("sk_"));
        assert_eq!(token.len(), 3 + 43);
        assert!(token[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn kv_keys_are_the_hex_sha256_of_the_token() {
        // sha256("abc"), the FIPS 180-2 example.
        assert_eq!(
            kv_key("abc"),
            "token:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cached_tokens_expire_after_the_ttl() {
        let mut cache = TokenCache::default();
        cache.put(kv_key("t"), "12345".to_owned(), 1_000);
        assert_eq!(
            cache.get(&kv_key("t"), 1_000 + CACHE_TTL_MS - 1),
            Some("12345")
        );
        assert_eq!(cache.get(&kv_key("t"), 1_000 + CACHE_TTL_MS), None);
        assert_eq!(cache.get(&kv_key("other"), 1_000), None);
    }

    #[test]
    fn a_revoked_token_leaves_the_cache_at_once() {
        let mut cache = TokenCache::default();
        cache.put(kv_key("t"), "12345".to_owned(), 0);
        cache.remove(&kv_key("t"));
        assert_eq!(cache.get(&kv_key("t"), 1), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut cache = TokenCache::default();
        for i in 0..(CACHE_CAPACITY + 5) {
            cache.put(format!("k{i}"), "u".to_owned(), 0);
        }
        assert_eq!(cache.slots.len(), CACHE_CAPACITY);
        assert_eq!(cache.get(&format!("k{}", CACHE_CAPACITY + 4), 0), Some("u"));
    }

    #[test]
    fn constant_time_eq_matches_only_equal_secrets() {
        assert!(constant_time_eq("admin-secret", "admin-secret"));
        assert!(!constant_time_eq("admin-secreT", "admin-secret"));
        assert!(!constant_time_eq("", "admin-secret"));
    }
}
