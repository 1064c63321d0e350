//! The service's HMAC key and what it derives: the only way anything about a
//! phone or a code reaches a store.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::{RngCore, TryRngCore, rngs::OsRng};
use sha2::Sha256;

use super::{ClientKey, CodeDigest, IdempotencyKey, OtpCode, PhoneNumber};

type HmacSha256 = Hmac<Sha256>;

/// Key for every hash the service stores. `Debug` never shows it.
#[derive(Clone)]
pub struct HmacSecret {
    bytes: Vec<u8>,
    /// HMAC with the key already absorbed: each hash clones it rather than
    /// hashing the key's inner and outer blocks again (two of the four
    /// SHA-256 blocks of a short message's HMAC; two hashes per call).
    keyed: HmacSha256,
}

impl PartialEq for HmacSecret {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for HmacSecret {}

/// Opaque store key for a phone number: a keyed hash, so a store never holds
/// the number itself. The 16 raw bytes, held inline: the memory store hashes
/// and compares them with no allocation (a hex `String` was a heap block per
/// entry and per call); `Display` writes the 32 lowercase hex characters
/// every Redis key, Lua argument and event field is spelled with.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectKey([u8; 16]);

// Domain-separation labels so a subject key can never equal a code digest.
const SUBJECT_LABEL: &[u8] = b"otp.v1/subject\0";
const CODE_LABEL: &[u8] = b"otp.v1/code\0";
const CLIENT_LABEL: &[u8] = b"otp.v1/client\0";
const IDEMPOTENCY_LABEL: &[u8] = b"otp.v1/idempotency\0";
const CALLER_IDEMPOTENCY_LABEL: &[u8] = b"otp.v1/caller-idempotency\0";
const EVENT_SUBJECT_LABEL: &[u8] = b"otp.v1/event-subject\0";
const CALLER_SOURCE_LABEL: &[u8] = b"otp.v1/caller-source\0";

impl HmacSecret {
    /// Wraps operator-supplied key material.
    pub fn new(bytes: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = <HmacSha256 as Mac>::new_from_slice(bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self {
            bytes: bytes.to_vec(),
            keyed,
        }
    }

    /// A fresh 256-bit key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.unwrap_err().fill_bytes(&mut bytes);
        Self::new(&bytes)
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(label);
        for part in parts {
            mac.update(part);
            mac.update(b"\0");
        }
        mac.finalize().into_bytes().into()
    }

    /// `HMAC-SHA256(secret, label ‖ phone ‖ code)`: what is kept instead of the code.
    pub fn code_digest(&self, phone: &PhoneNumber, code: &OtpCode) -> CodeDigest {
        CodeDigest::from_bytes(self.mac(
            CODE_LABEL,
            &[phone.e164().as_bytes(), code.expose().as_bytes()],
        ))
    }

    /// The store key for a phone number.
    pub fn subject_key(&self, phone: &PhoneNumber) -> SubjectKey {
        self.key(SUBJECT_LABEL, phone.e164())
    }

    /// The store key for a caller's `client_key`.
    pub fn client_subject(&self, client: &ClientKey) -> SubjectKey {
        self.key(CLIENT_LABEL, client.expose())
    }

    /// A keyed digest of an authenticated caller's name, for the pumping
    /// guard to tell its sends from other sources' (see `SendSource`).
    pub fn caller_source(&self, name: &str) -> SubjectKey {
        self.key(CALLER_SOURCE_LABEL, name)
    }

    /// The store key for an `idempotency_key` sent by `caller` (its name;
    /// `None` without caller authentication). Scoped to the caller: the
    /// same key from two callers names two records, so one caller can
    /// neither replay another's response nor learn which number its key
    /// was used for.
    pub fn idempotency_subject(&self, caller: Option<&str>, key: &IdempotencyKey) -> SubjectKey {
        match caller {
            None => self.key(IDEMPOTENCY_LABEL, key.expose()),
            Some(caller) => self.key_of(
                CALLER_IDEMPOTENCY_LABEL,
                &[caller.as_bytes(), key.expose().as_bytes()],
            ),
        }
    }

    /// The digest audit events carry for a phone number: stable per number
    /// (consumers correlate on it) but not the store key, so reading the
    /// event stream does not tell which Redis key holds the number's code.
    pub fn event_subject(&self, phone: &PhoneNumber) -> SubjectKey {
        self.key(EVENT_SUBJECT_LABEL, phone.e164())
    }

    fn key(&self, label: &[u8], value: &str) -> SubjectKey {
        self.key_of(label, &[value.as_bytes()])
    }

    fn key_of(&self, label: &[u8], parts: &[&[u8]]) -> SubjectKey {
        // 128 bits: collisions are out of reach, and keys stay short.
        let mac = self.mac(label, parts);
        let mut key = [0u8; 16];
        key.copy_from_slice(&mac[..16]);
        SubjectKey(key)
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret(<redacted>)")
    }
}

impl SubjectKey {
    /// Its first 8 bytes: short enough to keep per number inside a prefix's
    /// counts (the pumping guard), still a keyed digest of the number.
    pub fn tag(&self) -> [u8; 8] {
        let mut tag = [0; 8];
        tag.copy_from_slice(&self.0[..8]);
        tag
    }

    /// The 16 raw bytes: the shortest spelling of the key (Redis key names,
    /// issue 30).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The key as 32 lowercase hex digits (ASCII), safe in any store's key space.
    fn hex_digits(&self) -> [u8; 32] {
        let mut text = [0u8; 32];
        // 16 bytes always fill 32 digits exactly, so this cannot fail.
        let _ = hex::encode_to_slice(self.0, &mut text);
        text
    }
}

/// The 32 lowercase hex characters every store key and event field is built
/// from (byte for byte what `hex::encode` gave when the key was a `String`).
impl fmt::Display for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.hex_digits();
        // Hex digits are ASCII, so this never fails.
        f.pad(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// Shows what the derived `Debug` of the hex `String` showed, no more.
impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectKey(\"{self}\")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).expect("valid phone")
    }

    /// Pinned against Python's `hmac` over the same bytes: stored keys and
    /// digests must not change across versions (a pending code stored by
    /// one release is verified by the next), however the HMAC is computed.
    #[test]
    fn keys_and_digests_are_hmac_sha256_of_label_and_parts() {
        let secret = HmacSecret::new(b"k1");
        assert_eq!(
            secret.subject_key(&phone("+14155550123")).to_string(),
            "70e221686e9237417872c6d74a70d0ad"
        );
        let code = OtpCode::parse("123456", 6).expect("valid");
        assert_eq!(
            hex::encode(secret.code_digest(&phone("+14155550123"), &code).as_bytes()),
            "74fa4b90c2220b350306d06669f6c75903802e791cc32f3cbc2bde6be1fb98f2"
        );
        // The keyed state is reused, never updated in place: asking twice
        // gives the same answer.
        assert_eq!(
            secret.subject_key(&phone("+14155550123")),
            secret.subject_key(&phone("+14155550123"))
        );
    }

    #[test]
    fn digest_depends_on_secret_phone_and_code() {
        let secret = HmacSecret::new(b"k1");
        let code = OtpCode::parse("123456", 6).expect("valid");
        let other_code = OtpCode::parse("123457", 6).expect("valid");
        let a = secret.code_digest(&phone("+14155550123"), &code);
        assert_eq!(a, secret.code_digest(&phone("+1 415 555 0123"), &code));
        assert_ne!(a, secret.code_digest(&phone("+14155550124"), &code));
        assert_ne!(a, secret.code_digest(&phone("+14155550123"), &other_code));
        assert_ne!(
            a,
            HmacSecret::new(b"k2").code_digest(&phone("+14155550123"), &code)
        );
    }

    #[test]
    fn subject_keys_are_keyed_by_the_secret() {
        // A plain hash of the number would be the same under any secret (and
        // reversible by enumerating numbers); a keyed one changes with it.
        let number = phone("+14155550123");
        let (k1, k2) = (HmacSecret::new(b"k1"), HmacSecret::new(b"k2"));
        let key = k1.subject_key(&number);
        let text = key.to_string();
        assert_eq!(text.len(), 32);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(key, k1.subject_key(&phone("+1 415 555 0123")));
        assert_ne!(key, k2.subject_key(&number));
        assert_ne!(key, k1.subject_key(&phone("+14155550124")));
        let client = ClientKey::parse("203.0.113.7")
            .expect("valid client key")
            .expect("not empty");
        assert_ne!(k1.client_subject(&client), k2.client_subject(&client));
        let idempotency = IdempotencyKey::parse("signup-1")
            .expect("valid key")
            .expect("not empty");
        assert_ne!(
            k1.idempotency_subject(None, &idempotency),
            k2.idempotency_subject(None, &idempotency)
        );
        let of = |caller| k1.idempotency_subject(caller, &idempotency);
        assert_ne!(
            of(Some("checkout")),
            of(Some("billing")),
            "scoped per caller"
        );
        assert_ne!(of(Some("checkout")), of(None));
        assert_eq!(of(Some("checkout")), of(Some("checkout")));
    }

    #[test]
    fn subject_key_text_is_the_hex_of_its_bytes() {
        let key = HmacSecret::new(b"k1").subject_key(&phone("+14155550123"));
        assert_eq!(key.to_string(), hex::encode(key.0));
        // Exactly what the derived `Debug` of the old hex `String` key showed.
        assert_eq!(
            format!("{key:?}"),
            "SubjectKey(\"70e221686e9237417872c6d74a70d0ad\")"
        );
        let every_nibble =
            SubjectKey(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10");
        assert_eq!(every_nibble.to_string(), "0123456789abcdeffedcba9876543210");
    }

    #[test]
    fn debug_redacts_the_secret() {
        assert_eq!(
            format!("{:?}", HmacSecret::new(b"topsecret")),
            "HmacSecret(<redacted>)"
        );
    }
}
