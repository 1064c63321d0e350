//! The compact layout of issue 30 ("a quarter of the bytes per number"):
//! one key per phone number holding its code state and its send log
//! together, a short binary string (`lua/number_record.lua` says the byte
//! layout), named by the prefix, one letter and the 16 raw bytes of the
//! keyed hash: 21 bytes with the default prefix, which Redis keeps in its
//! smallest allocation, where `otp:{<32 hex>}:code` took 48. A
//! `client_key`'s send log, packed the same way, is not a key of its own (a
//! key with a TTL costs ~150 B however small) but a field of one of 4 096
//! bucket hashes, `<prefix>:c` and the first 12 bits of its digest, which
//! Redis keeps as listpacks while small (README, "How big a Redis"). One key
//! per number (or bucket) needs no hash tag: each script on it touches that
//! key alone, so a Redis Cluster routes it by the key itself.
//!
//! A rolling upgrade: an older version beside this one keeps a number's code
//! in the hash `<prefix>:{<32 hex>}:code` and its sends in the sorted set
//! `…:sends` (a client's in `…:client-sends`). Every script on a record is
//! handed those names too, and adopts what they hold into the record, then
//! deletes them (`adopt_legacy` in `number_record.lua`): on one server or
//! Sentinel, while old records can exist (`legacy_adoption.rs`: not if the
//! database was empty when this layout first ran on it, nor 25 hours after
//! that). Not on a Redis Cluster: the old names hash to other slots, so no
//! script may touch both (README, "Upgrading to the compact layout").
//!
//! Only the 16 first bytes of a code's digest are kept: a wrong guess is
//! still refused but with odds of 2^-128 instead of 2^-256, far below the
//! guess budget's own odds (`OTP_MAX_ATTEMPTS` in 10^`OTP_CODE_LENGTH`).

use deadpool_redis::redis::{Script, ScriptInvocation, Value};
use rand::{Rng, TryRngCore, rngs::OsRng};

use super::{RedisStore, legacy_adoption::LayoutMarker, send_log::numbers_in};
use crate::{
    domain::{CodeDigest, SubjectKey},
    store::{SendLog, StoreError},
};

/// The letter after the prefix naming a phone number's record.
const NUMBER: u8 = b'n';
/// The letter after the prefix naming a bucket of `client_key` send logs.
const CLIENT: u8 = b'c';
/// The first bits of a client's digest that name its bucket: 4 096 buckets,
/// ~50 clients each at 200 000 client keys a day, under Redis's default
/// `hash-max-listpack-entries` (128), so each stays a compact listpack.
const BUCKET_BITS: u32 = 12;

/// The name after the prefix of the marker saying when this layout first
/// ran (`legacy_adoption.rs`).
const LAYOUT_MARKER: &str = "layout";

impl RedisStore {
    /// `<prefix>:n<16 raw bytes>`: the number's code state and send log.
    pub(super) fn record_key(&self, subject: &SubjectKey) -> Vec<u8> {
        packed_key(&self.prefix, NUMBER, subject)
    }

    /// The key of `log` when it is a packed log (a number's, in its record;
    /// a `client_key`'s, in its bucket), `None` for the logs kept as sorted
    /// sets (the shared ones, busy enough that a packed string would be
    /// rewritten whole on every send, and the verify logs).
    pub(super) fn packed_log_key(&self, log: &SendLog) -> Option<Vec<u8>> {
        match log {
            SendLog::Phone(subject) => Some(self.record_key(subject)),
            SendLog::Client(client) => Some(bucket_key(&self.prefix, client)),
            _ => None,
        }
    }
}

/// A packed log's field in its key: a client's 16 raw bytes in its bucket,
/// empty for a number's record (the whole key).
pub(super) fn packed_log_field(log: &SendLog) -> &[u8] {
    match log {
        SendLog::Client(client) => client.as_bytes(),
        _ => &[],
    }
}

impl RedisStore {
    /// The names an older version kept `log`'s records under, while they
    /// are adopted: a number's code hash and sorted set, a client's sorted
    /// set; none for other logs, or when there is nothing to adopt (read
    /// from the layout marker on a process's first call here).
    pub(super) async fn legacy_keys(&self, log: &SendLog) -> Vec<Vec<u8>> {
        if !matches!(log, SendLog::Phone(_) | SendLog::Client(_)) {
            return Vec::new();
        }
        self.legacy
            .settle(|| self.bounded(self.read_layout_marker()))
            .await;
        if !self.legacy.adopting() {
            return Vec::new();
        }
        match log {
            SendLog::Phone(subject) => vec![
                format!("{}:{{{subject}}}:code", self.prefix).into_bytes(),
                format!("{}:{{{subject}}}:sends", self.prefix).into_bytes(),
            ],
            // The first compact layout's own key first (adopted where a
            // number's code hash would be), then the sorted set before it.
            SendLog::Client(client) => vec![
                legacy_client_log_key(&self.prefix, client),
                format!("{}:{{{client}}}:client-sends", self.prefix).into_bytes(),
            ],
            _ => Vec::new(),
        }
    }

    /// `script` on `subject`'s record, with its legacy names.
    pub(super) async fn on_record<'a>(
        &self,
        script: &'a Script,
        subject: &SubjectKey,
    ) -> ScriptInvocation<'a> {
        let mut invocation = script.key(self.record_key(subject));
        for legacy in self.legacy_keys(&SendLog::Phone(*subject)).await {
            invocation.key(legacy);
        }
        invocation
    }

    /// `layout_marker.lua`: written by the first call of this layout on
    /// this database, read by every later process.
    async fn read_layout_marker(&self) -> Result<LayoutMarker, StoreError> {
        let marker = format!("{}:{LAYOUT_MARKER}", self.prefix);
        let reply: Vec<Value> = self
            .connections
            .invoke(self.scripts.layout_marker.key(marker).arg(&self.prefix))
            .await?;
        LayoutMarker::from_reply(&numbers_in(&reply)?)
    }
}

/// `<prefix>:c` and 2 bytes: the client's digest's first [`BUCKET_BITS`],
/// the rest of the second byte zero.
fn bucket_key(prefix: &str, client: &SubjectKey) -> Vec<u8> {
    let digest = client.as_bytes();
    let low_mask = u8::MAX >> (BUCKET_BITS - 8);
    let mut name = Vec::with_capacity(prefix.len() + 4);
    name.extend_from_slice(prefix.as_bytes());
    name.extend_from_slice(&[b':', CLIENT, digest[0], digest[1] & !low_mask]);
    name
}

/// `<prefix>:c<16 raw bytes>`: where the first compact layout (258abc1, the
/// release before the client buckets) kept a client's packed log.
fn legacy_client_log_key(prefix: &str, client: &SubjectKey) -> Vec<u8> {
    packed_key(prefix, CLIENT, client)
}

fn packed_key(prefix: &str, kind: u8, key: &SubjectKey) -> Vec<u8> {
    let mut name = Vec::with_capacity(prefix.len() + 18);
    name.extend_from_slice(prefix.as_bytes());
    name.push(b':');
    name.push(kind);
    name.extend_from_slice(key.as_bytes());
    name
}

/// The part of a code's digest a number's record keeps (see the module doc).
pub(super) fn kept_digest(digest: &CodeDigest) -> &[u8] {
    &digest.as_bytes()[..16]
}

/// A packed send's nonce: random, so two sends counted in one millisecond
/// are told apart by their refunds (and equal only when interchangeable).
pub(super) fn random_nonce() -> u16 {
    OsRng.unwrap_err().random::<u16>()
}

/// The refund token of a packed send: its time on Redis's clock and its nonce.
pub(super) fn packed_token(sent_at_ms: u64, nonce: u16) -> String {
    format!("{sent_at_ms}:{nonce}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_key_is_the_prefix_a_letter_and_sixteen_raw_bytes() {
        let subject = crate::domain::HmacSecret::new(&[7; 32])
            .subject_key(&crate::domain::PhoneNumber::parse("+447700900123").expect("valid"));
        let key = packed_key("otp", NUMBER, &subject);
        assert_eq!(key.len(), 21);
        assert_eq!(&key[..5], b"otp:n");
        assert_eq!(&key[5..], subject.as_bytes());
    }

    #[test]
    fn a_client_bucket_is_named_by_the_first_twelve_bits_of_its_digest() {
        let secret = crate::domain::HmacSecret::new(&[7; 32]);
        let buckets: std::collections::HashSet<Vec<u8>> = (0..20_000)
            .map(|n| {
                let client = secret.subject_key(
                    &crate::domain::PhoneNumber::parse(&format!("+4477009{n:05}")).expect("valid"),
                );
                let key = bucket_key("otp", &client);
                assert_eq!(&key[..5], b"otp:c");
                assert_eq!(key[5], client.as_bytes()[0]);
                assert_eq!(key[6], client.as_bytes()[1] & 0xf0);
                key
            })
            .collect();
        assert!(buckets.len() > 4_000, "{} of 4 096 buckets", buckets.len());
        assert!(buckets.len() <= 4_096);
    }
}
