//! Base64 (RFC 4648, standard alphabet) as Countersign has always written and
//! read it: on data-encoding, which also does the Base32 of secrets.
//!
//! Compatibility: these accept exactly what the `base64` crate's engines
//! accepted before (0.22, `STANDARD` and `STANDARD` with
//! `DecodePaddingMode::Indifferent`), byte for byte; the tests below compare
//! with hand-checked cases of that engine. data-encoding alone would also
//! accept concatenated padded blocks (`AA==AA==`), which the old engine
//! refused, so padding is only allowed at the end.

use data_encoding::{BASE64, BASE64_NOPAD};

/// Text that is not base64 of the expected form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64")]
pub struct Invalid;

/// Standard base64 with padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    BASE64.encode(bytes.as_ref())
}

/// Decodes padded standard base64: canonical padding, zero trailing bits, no
/// whitespace.
pub fn decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, Invalid> {
    let text = text.as_ref();
    if body(text).contains(&b'=') {
        return Err(Invalid);
    }
    BASE64.decode(text).map_err(|_| Invalid)
}

/// Decodes standard base64 whose padding is optional, as exporters write it:
/// none, or as much as completes the last block (`AA=` and `AA==` both read
/// as one byte; `AAAA=` and `AA===` are refused).
pub fn decode_lenient(text: impl AsRef<[u8]>) -> Result<Vec<u8>, Invalid> {
    let text = text.as_ref();
    let body = body(text);
    let padding = text.len() - body.len();
    if body.contains(&b'=') || (padding > 0 && (body.len().is_multiple_of(4) || body.len() % 4 + padding > 4)) {
        return Err(Invalid);
    }
    BASE64_NOPAD.decode(body).map_err(|_| Invalid)
}

/// `text` without its trailing `=`s.
fn body(text: &[u8]) -> &[u8] {
    let end = text.iter().rposition(|&b| b != b'=').map_or(0, |last| last + 1);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_padded() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode([0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn strict_decoding_refuses_what_the_old_engine_refused() {
        assert_eq!(decode("Zm9vYg=="), Ok(b"foob".to_vec()));
        assert_eq!(decode(""), Ok(Vec::new()));
        for bad in ["Zm9vYg", "Zm9vYg=", "Zm9vYg===", "Zg==Zg==", "Zm8=Zm9v", "Zh==", "Zm9", "Zm9v\n", " Zm9v", "Zm-v", "Zm_v", "="] {
            assert_eq!(decode(bad), Err(Invalid), "{bad:?}");
        }
    }

    #[test]
    fn lenient_decoding_takes_padding_or_none() {
        for (text, bytes) in [
            ("AA", &[0u8][..]),
            ("AA=", &[0]),
            ("AA==", &[0]),
            ("AAA", &[0, 0]),
            ("AAA=", &[0, 0]),
            ("AAAAAA=", &[0, 0, 0, 0]),
            ("AAAA", &[0, 0, 0]),
            ("", &[]),
        ] {
            assert_eq!(decode_lenient(text), Ok(bytes.to_vec()), "{text:?}");
        }
        for bad in ["AA===", "AAA==", "AAAA=", "AAAA==", "AAAAA=", "A", "A===", "=", "==", "AA==AA==", "AB", "AA-_", "AA AA"] {
            assert_eq!(decode_lenient(bad), Err(Invalid), "{bad:?}");
        }
    }
}
