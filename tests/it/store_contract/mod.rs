//! The store contract: the edge cases of every [`OtpStore`] operation,
//! called directly (no gRPC, no flow) on every store. `MemoryStore` and the
//! Lua scripts of `RedisStore` implement each rule twice; this suite is what
//! keeps the twins saying the same thing.
//!
//! [`OtpStore`]: otp_service::store::OtpStore

mod codes;
mod idempotency;
mod prefix_window;
mod races;
mod send_log;
mod send_plan;
mod spend;
mod verify_log;

use std::time::Duration;

use otp_service::{
    abuse::{DestinationPrefix, GuardMode, PumpingGuardSettings},
    domain::{CodeDigest, HmacSecret, PhoneNumber, SubjectKey},
};

use crate::common::{TestStore, unique_phone};

/// The guess budget most cases use.
const MAX_ATTEMPTS: u32 = 5;
/// The code lifetime most cases use: long enough never to end mid-test.
const LIFETIME: Duration = Duration::from_secs(60);

/// A subject (or any other store key) no other test uses.
fn new_subject() -> SubjectKey {
    let phone = PhoneNumber::parse(&unique_phone()).expect("a valid number");
    HmacSecret::new(b"store-contract").subject_key(&phone)
}

/// A code digest, one per `n`.
fn digest(n: u8) -> CodeDigest {
    CodeDigest::from_bytes([n; 32])
}

/// Lifetime left on `subject`'s pending code, `None` when nothing is pending.
async fn pending(store: &TestStore, subject: &SubjectKey) -> Option<Duration> {
    store
        .pending_lifetime(subject)
        .await
        .expect("pending_lifetime answers")
}

/// The destination prefix of `phone` (4 digits after the calling code), as
/// the pumping guard takes it; the guard's other settings play no part.
fn prefix(phone: &str) -> DestinationPrefix {
    let settings = PumpingGuardSettings {
        mode: GuardMode::Enforce,
        prefix_digits: 4,
        window: Duration::from_secs(60),
        min_sends: 1,
        min_approved_percent: 50,
        suspension: Duration::from_secs(60),
        min_sources: 1,
        trust_for: Duration::ZERO,
    };
    settings.prefix_of(&PhoneNumber::parse(phone).expect("a valid number"))
}
