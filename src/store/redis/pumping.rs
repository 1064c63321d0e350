//! Redis side of the pumping guard: each destination prefix's sends,
//! approvals and suspension under one hash tag (one Cluster slot, one
//! script per decision), and the service-wide list of suspended prefixes.

use std::time::Duration;

use deadpool_redis::redis::{ScriptInvocation, Value};
use rand::{RngCore, TryRngCore, rngs::OsRng};

use super::{RedisStore, millis, send_log::split_reply};
use crate::{
    abuse::{DestinationPrefix, PrefixRule},
    domain::SubjectKey,
    store::{PrefixDecision, PrefixSender, PrefixStep, PrefixVerdict, StoreError},
};

/// The keys of one prefix under `key_prefix`, in the order every per-prefix
/// script declares them: its unapproved sends, its approved sends, its
/// suspension, each number's latest send (written only by versions up to
/// `5022918`: read while an old replica keeps it), the trusted numbers, the
/// exemption and when sends were last acted on. The destination prefix (`+` and digits, never a whole number)
/// is their hash tag. (The approved sends were `:approvals`, one entry per
/// approval, before approvals were counted per send: that key is no longer
/// read and expires within a window.)
fn prefix_keys(key_prefix: &str, prefix: &DestinationPrefix) -> PrefixKeys {
    let tagged = format!("{key_prefix}:{{pumping:{}}}", prefix.as_str());
    [
        "sends",
        "approved",
        "suspended",
        "latest",
        "trusted",
        "exempt",
        "judged-up-to",
    ]
    .map(|name| format!("{tagged}:{name}"))
}

/// See [`prefix_keys`].
pub(super) type PrefixKeys = [String; 7];

/// A send's member in the prefix's sorted set: a random token, the source
/// and the number's subject tag, 8 raw bytes each (issue 30; before it the
/// three in hex joined by `:`, 50 bytes, which the scripts still read), so a
/// verdict can count sources and an approval can tell its number's send
/// among those of one millisecond. The token is random, so two replicas never pick the
/// same member. The refund token is the member in hex.
fn send_member(sender: PrefixSender<'_>) -> [u8; 24] {
    let mut member = [0; 24];
    OsRng.unwrap_err().fill_bytes(&mut member[..8]);
    member[8..16].copy_from_slice(&sender.source.0);
    member[16..].copy_from_slice(&sender.subject.tag());
    member
}

impl RedisStore {
    /// See [`prefix_keys`].
    pub(super) fn prefix_keys(&self, prefix: &DestinationPrefix) -> PrefixKeys {
        prefix_keys(&self.prefix, prefix)
    }

    /// The service-wide sorted set of suspended prefixes.
    pub(super) fn suspended_prefixes_key(&self) -> String {
        format!("{}:{{pumping}}:suspended-prefixes", self.prefix)
    }

    /// The service-wide sorted set of exempt prefixes.
    pub(super) fn exempt_prefixes_key(&self) -> String {
        format!("{}:{{pumping}}:exempt-prefixes", self.prefix)
    }

    /// Adds `count_prefix_send.lua`'s keys and arguments for `step` to
    /// `invocation` (alone or inside the send driver); returns the send's
    /// member, its refund token.
    pub(super) fn add_prefix_send(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        step: &PrefixStep<'_>,
    ) -> String {
        let member = send_member(step.sender);
        for key in self.prefix_keys(step.prefix) {
            invocation.key(key);
        }
        let rule = step.rule;
        invocation
            .arg(&member[..])
            .arg(millis(rule.window))
            .arg(millis(rule.judge_after))
            .arg(rule.min_sends)
            .arg(rule.min_approved_percent)
            .arg(millis(rule.suspension))
            .arg(rule.min_sources)
            .arg(hex::encode(step.sender.subject.tag()))
            .arg(&step.sender.subject.tag()[..]);
        hex::encode(member)
    }

    pub(super) async fn count_prefix_send_script(
        &self,
        prefix: &DestinationPrefix,
        rule: &PrefixRule,
        sender: PrefixSender<'_>,
    ) -> Result<PrefixDecision, StoreError> {
        let mut invocation = self.scripts.count_prefix_send.prepare_invoke();
        let step = PrefixStep {
            prefix,
            rule,
            refuse_suspended: true,
            sender,
        };
        let member = self.add_prefix_send(&mut invocation, &step);
        if let Some(sent_at_ms) = sender.sent_at_ms {
            invocation.arg(sent_at_ms);
        }
        let reply: Vec<Value> = self.run(&invocation).await?;
        prefix_decision(&reply, member)
    }

    /// `refund_send.lua` on the prefix's sends.
    pub(super) async fn refund_prefix_send_script(
        &self,
        prefix: &DestinationPrefix,
        token: &str,
    ) -> Result<(), StoreError> {
        let [sends, ..] = self.prefix_keys(prefix);
        // The member in hex (`send_member`); anything else names no send.
        let Ok(member) = hex::decode(token) else {
            return Ok(());
        };
        let _removed: i64 = self
            .run(self.scripts.refund_send.key(sends).arg(member))
            .await?;
        Ok(())
    }

    pub(super) async fn count_prefix_approval_script(
        &self,
        prefix: &DestinationPrefix,
        subject: &SubjectKey,
        rule: &PrefixRule,
        sent_at_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let [sends, approved, _, latest, trusted, ..] = self.prefix_keys(prefix);
        let _: i64 = self
            .run(
                self.scripts
                    .count_prefix_approval
                    .key(sends)
                    .key(approved)
                    .key(latest)
                    .key(trusted)
                    .arg(hex::encode(subject.tag()))
                    .arg(millis(rule.window))
                    .arg(millis(rule.trust_for))
                    .arg(&subject.tag()[..])
                    .arg(sent_at_ms.unwrap_or(0)),
            )
            .await?;
        Ok(())
    }

    /// Runs `suspended_prefixes.lua`, listing `newly` first if given.
    pub(super) async fn suspended_prefixes_script(
        &self,
        newly: Option<(&DestinationPrefix, Duration)>,
    ) -> Result<u64, StoreError> {
        let mut invocation = self
            .scripts
            .suspended_prefixes
            .key(self.suspended_prefixes_key());
        if let Some((prefix, lift_in)) = newly {
            invocation.arg(prefix.as_str()).arg(millis(lift_in));
        }
        self.run(&invocation).await
    }
}

/// `count_prefix_send.lua`'s reply to a send counted with `token`.
pub(super) fn prefix_decision(
    reply: &[Value],
    token: String,
) -> Result<PrefixDecision, StoreError> {
    let (status, numbers) = split_reply(reply)?;
    match (status.as_str(), numbers.as_slice()) {
        ("counted", []) => Ok(PrefixDecision::Counted { token }),
        ("suspended", [lift_in]) => Ok(PrefixDecision::Suspended {
            lift_in: Duration::from_millis(*lift_in),
            verdict: None,
        }),
        ("suspended", [lift_in, judged, approved]) => Ok(PrefixDecision::Suspended {
            lift_in: Duration::from_millis(*lift_in),
            verdict: Some(PrefixVerdict {
                judged: *judged,
                approved: *approved,
            }),
        }),
        (other, numbers) => Err(StoreError::Protocol(format!(
            "count_prefix_send replied `{other}` {numbers:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        abuse::{GuardMode, PumpingGuardSettings},
        domain::PhoneNumber,
    };

    /// Redis Cluster runs a script only if all its keys are in one slot; the
    /// hash tag (the text in the first braces) decides the slot.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("a hash tag");
        let close = key[open..].find('}').expect("a closed hash tag");
        &key[open + 1..open + close]
    }

    fn prefix(raw: &str) -> DestinationPrefix {
        let settings = PumpingGuardSettings {
            mode: GuardMode::Enforce,
            prefix_digits: 4,
            window: Duration::from_secs(3600),
            min_sends: 20,
            min_approved_percent: 20,
            suspension: Duration::from_secs(3600),
            min_sources: 3,
            trust_for: Duration::from_secs(86_400),
        };
        settings.prefix_of(&PhoneNumber::parse(raw).expect("valid"))
    }

    #[test]
    fn a_prefix_keys_share_one_hash_tag_and_other_prefixes_another() {
        let keys = prefix_keys("otp", &prefix("+44 7700 900123"));
        assert_eq!(keys[0], "otp:{pumping:+447700}:sends");
        assert!(keys.iter().all(|key| hash_tag(key) == "pumping:+447700"));
        let other = prefix_keys("otp", &prefix("+44 7701 900123"));
        assert_ne!(hash_tag(&keys[0]), hash_tag(&other[0]));
    }
}
