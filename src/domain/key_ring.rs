//! HMAC key rotation: the secret that digests new codes, the previous ones
//! whose codes still verify, and the one secret that names store records.
//!
//! Store record names (subject keys of phones, client keys, idempotency keys)
//! are HMACs too. If they followed the signing secret, a rotation would move
//! every record to a new name: pending codes, spent guesses, locks and send
//! limits would silently reset, which is exactly what an attacker waiting
//! out a lock would want. So records are named with the **oldest** secret of
//! the ring (the last of `OTP_HMAC_PREVIOUS_SECRETS`, or `OTP_HMAC_SECRET`
//! while there is none), which stays put across rotations: replicas on the
//! old and the new configuration of a rolling deploy address the same records.
//! Each decision stays one script on one key (and one Redis Cluster slot):
//! no lookup under two names is ever needed.

use super::{ClientKey, CodeDigest, HmacSecret, IdempotencyKey, OtpCode, PhoneNumber, SubjectKey};

/// The service's HMAC secrets. `Debug` never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacKeys {
    signing: HmacSecret,
    previous: Vec<HmacSecret>,
}

impl HmacKeys {
    /// `signing` digests new codes; `previous` (newest first) still verify
    /// theirs, and the last of them names store records.
    pub fn new(signing: HmacSecret, previous: Vec<HmacSecret>) -> Self {
        Self { signing, previous }
    }

    /// One secret only (no rotation in progress).
    pub fn single(secret: HmacSecret) -> Self {
        Self::new(secret, Vec::new())
    }

    fn naming(&self) -> &HmacSecret {
        self.previous.last().unwrap_or(&self.signing)
    }

    /// The digest stored for a new code (signing secret).
    pub fn code_digest(&self, phone: &PhoneNumber, code: &OtpCode) -> CodeDigest {
        self.signing.code_digest(phone, code)
    }

    /// Every digest `code` may have been stored under: the signing secret's
    /// first, then each previous secret's. A store approves if any matches.
    pub fn candidate_digests(&self, phone: &PhoneNumber, code: &OtpCode) -> Vec<CodeDigest> {
        std::iter::once(&self.signing)
            .chain(&self.previous)
            .map(|secret| secret.code_digest(phone, code))
            .collect()
    }

    /// The store key for a phone number (stable across rotations).
    pub fn subject_key(&self, phone: &PhoneNumber) -> SubjectKey {
        self.naming().subject_key(phone)
    }

    /// The store key for a `client_key` (stable across rotations).
    pub fn client_subject(&self, client: &ClientKey) -> SubjectKey {
        self.naming().client_subject(client)
    }

    /// A caller's source tag for the pumping guard (stable across rotations).
    pub fn caller_source(&self, name: &str) -> SubjectKey {
        self.naming().caller_source(name)
    }

    /// The store key for an `idempotency_key` sent by `caller`, scoped to
    /// it (stable across rotations; see [`HmacSecret::idempotency_subject`]).
    pub fn idempotency_subject(&self, caller: Option<&str>, key: &IdempotencyKey) -> SubjectKey {
        self.naming().idempotency_subject(caller, key)
    }

    /// The digest audit events carry for a phone number: keyed with the
    /// same secret as record names, so it stays put across rotations just
    /// as they do (consumers correlate one number's events over time), but
    /// under a label of its own, so it is not the store's key.
    pub fn event_subject(&self, phone: &PhoneNumber) -> SubjectKey {
        self.naming().event_subject(phone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+14155550123").expect("valid")
    }

    #[test]
    fn record_names_survive_a_rotation_and_old_codes_still_verify() {
        let old = HmacSecret::new(b"old-secret");
        let new = HmacSecret::new(b"new-secret");
        let before = HmacKeys::single(old.clone());
        let during = HmacKeys::new(new.clone(), vec![old.clone()]);
        let code = OtpCode::parse("123456", 6).expect("valid");

        assert_eq!(before.subject_key(&phone()), during.subject_key(&phone()));
        assert!(
            during
                .candidate_digests(&phone(), &code)
                .contains(&before.code_digest(&phone(), &code))
        );
        assert_eq!(
            during.code_digest(&phone(), &code),
            new.code_digest(&phone(), &code)
        );
        assert_ne!(
            during.code_digest(&phone(), &code),
            before.code_digest(&phone(), &code),
            "new codes are digested with the new secret"
        );
    }

    #[test]
    fn event_digests_survive_a_rotation_and_are_not_store_keys() {
        let old = HmacSecret::new(b"old-secret");
        let before = HmacKeys::single(old.clone());
        let during = HmacKeys::new(HmacSecret::new(b"new-secret"), vec![old.clone()]);
        let later = HmacKeys::new(
            HmacSecret::new(b"newer-secret"),
            vec![HmacSecret::new(b"new-secret"), old],
        );
        let digest = before.event_subject(&phone());
        assert_eq!(during.event_subject(&phone()), digest);
        assert_eq!(later.event_subject(&phone()), digest);
        assert_ne!(digest, before.subject_key(&phone()), "not the store key");
        let retired = HmacKeys::single(HmacSecret::new(b"new-secret"));
        assert_ne!(
            retired.event_subject(&phone()),
            digest,
            "retiring the naming secret renames events as it renames records"
        );
    }
}
