//! The webhook signature, the same in both directions: HMAC-SHA256, keyed with the shared secret,
//! over the timestamp header's text, a `.`, and the raw body bytes, sent hex-encoded as
//! `X-PD-Signature: sha256=<hex>` beside `X-PD-Timestamp: <Unix seconds>`.
//!
//! The receiver refuses a timestamp more than the tolerance away from its clock (a replayed old
//! request), and compares the signature in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Unix seconds at which the request was signed.
pub const TIMESTAMP_HEADER: &str = "x-pd-timestamp";
/// `sha256=` and the hex HMAC-SHA256 of `timestamp + "." + body`.
pub const SIGNATURE_HEADER: &str = "x-pd-signature";
/// The delivery's stable id: the same on every attempt of one delivery (outbound only).
pub const DELIVERY_HEADER: &str = "x-pd-delivery";
/// What happened, as in the body's `type` (outbound only).
pub const EVENT_HEADER: &str = "x-pd-event";

const SCHEME: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// A header is missing, or not of the documented form.
    Malformed,
    /// The timestamp is further from now than the tolerance.
    Stale,
    /// The signature does not match.
    Mismatch,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-PD-Signature` value for `body` signed at `timestamp` (the header's text).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let mut signature = String::with_capacity(SCHEME.len() + 64);
    signature.push_str(SCHEME);
    for byte in digest {
        signature.push_str(&format!("{byte:02x}"));
    }
    signature
}

/// Checks a request's `X-PD-Timestamp` and `X-PD-Signature` against its raw body, at `now` (Unix
/// seconds). The comparison runs in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut verifier = StreamingVerifier::start(secret, timestamp, signature, now, tolerance)?;
    verifier.update(body);
    verifier.finish()
}

/// [`verify`] over a body read in pieces (an upload streamed to disk): the headers' form and the
/// timestamp are checked before any of the body is read, the signature once all of it is.
pub struct StreamingVerifier {
    mac: HmacSha256,
    expected: Vec<u8>,
}

impl StreamingVerifier {
    pub fn start(
        secret: &[u8],
        timestamp: Option<&str>,
        signature: Option<&str>,
        now: i64,
        tolerance: Duration,
    ) -> Result<StreamingVerifier, SignatureError> {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return Err(SignatureError::Malformed) };
        let signed_at: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
        let expected = signature
            .strip_prefix(SCHEME)
            .and_then(decode_hex)
            .filter(|bytes| bytes.len() == 32)
            .ok_or(SignatureError::Malformed)?;
        if signed_at.abs_diff(now) > tolerance.as_secs() {
            return Err(SignatureError::Stale);
        }
        Ok(StreamingVerifier { mac: mac(secret, timestamp, b""), expected })
    }

    pub fn update(&mut self, piece: &[u8]) {
        self.mac.update(piece);
    }

    pub fn finish(self) -> Result<(), SignatureError> {
        self.mac.verify_slice(&self.expected).map_err(|_| SignatureError::Mismatch)
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"an-example-shared-secret";
    const TOLERANCE: Duration = Duration::from_secs(300);

    #[test]
    fn the_readme_example_signs_to_the_documented_value() {
        // The worked example of the README ("Integrations"): the same inputs give the same hex.
        let body = r#"{"messageId":"pc-10001","customerId":"c001","content":"你好，库存数据不同步"}"#.as_bytes();
        let signature = sign(SECRET, "1767225600", body);
        assert_eq!(signature, "sha256=df1fb40d7bfd78443577fef09c606a59ccfa549e01825e3282fefb146e2153ae");
    }

    #[test]
    fn a_signature_is_accepted_once_and_refused_when_anything_changes() {
        let body = b"{\"a\":1}";
        let signature = sign(SECRET, "1000", body);
        assert_eq!(verify(SECRET, Some("1000"), Some(&signature), body, 1000, TOLERANCE), Ok(()));
        assert_eq!(verify(SECRET, Some("1000"), Some(&signature), body, 1300, TOLERANCE), Ok(()));
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&signature), b"{\"a\":2}", 1000, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another-secret!!", Some("1000"), Some(&signature), body, 1000, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some("1001"), Some(&signature), body, 1000, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(SECRET, Some("1000"), Some(&signature), body, 1301, TOLERANCE), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, Some("1000"), Some(&signature), body, 699, TOLERANCE), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, None, Some(&signature), body, 1000, TOLERANCE), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some("1000"), Some("md5=00"), body, 1000, TOLERANCE), Err(SignatureError::Malformed));
        assert_eq!(
            verify(SECRET, Some("soon"), Some(&signature), body, 1000, TOLERANCE),
            Err(SignatureError::Malformed)
        );
    }
}
