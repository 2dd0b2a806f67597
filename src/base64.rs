//! Base64 (RFC 4648), the two alphabets the API uses: standard with padding for the
//! Standard Webhooks key and signatures, URL-safe without padding for tokens and
//! cursors. A few dozen lines here instead of a crate: the wasm is size-bound.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(char::from(alphabet[((v >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Standard alphabet, padded (`+/`, `=`).
pub fn encode_standard(bytes: &[u8]) -> String {
    encode_with(bytes, STANDARD, true)
}

/// URL-safe alphabet, no padding (`-_`).
pub fn encode_url_safe(bytes: &[u8]) -> String {
    encode_with(bytes, URL_SAFE, false)
}

fn decode_with(text: &str, alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = alphabet.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // Leftover bits must be zero and fewer than a byte (a lone sixth character is not
    // base64).
    let leftover_clean = acc & ((1 << bits) - 1) == 0;
    (bits < 6 && leftover_clean).then_some(out)
}

/// Decodes the standard alphabet, padding optional.
pub fn decode_standard(text: &str) -> Option<Vec<u8>> {
    decode_with(text, STANDARD)
}

/// Decodes the URL-safe alphabet without padding.
pub fn decode_url_safe(text: &str) -> Option<Vec<u8>> {
    if text.contains('=') {
        return None;
    }
    decode_with(text, URL_SAFE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode_standard(plain.as_bytes()), encoded);
            assert_eq!(decode_standard(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                encode_url_safe(plain.as_bytes()),
                encoded.trim_end_matches('=')
            );
            assert_eq!(
                decode_url_safe(encoded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
    }

    #[test]
    fn the_alphabets_differ_only_in_two_characters() {
        let bytes = [0xfb, 0xff, 0xbf];
        assert_eq!(encode_standard(&bytes), "+/+/");
        assert_eq!(encode_url_safe(&bytes), "-_-_");
        assert_eq!(decode_standard("-_-_"), None);
        assert_eq!(decode_url_safe("+/+/"), None);
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["*", "Zm9v!", "Z", "Zm9vY"] {
            assert_eq!(decode_standard(bad), None, "{bad}");
        }
        assert_eq!(decode_url_safe("Zg=="), None);
    }
}
