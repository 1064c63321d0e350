//! Send logs on Redis: a number's and a `client_key`'s packed (a number's
//! in its record, a client's in a bucket hash: `number_record.rs`, counted
//! and refunded by `record_packed_send.lua` and
//! `refund_packed_send.lua`), every other one a sorted set (`record_send.lua`
//! and `refund_send.lua`).

use std::time::Duration;

use deadpool_redis::redis::Value;
use rand::{Rng, RngCore, TryRngCore, rngs::OsRng};

use super::{
    RedisStore, millis,
    number_record::{packed_log_field, packed_token, random_nonce},
};
use crate::{
    abuse::RateRule,
    store::{SendDecision, SendLog, StoreError, Violation},
};

impl RedisStore {
    /// The key of one send log: a packed log's (`number_record.rs`), or the
    /// sorted set of any other. The anonymous and global logs are one hot
    /// key each; a caller's verify log shares the slot of its send log.
    pub(super) fn send_log_key(&self, log: &SendLog) -> Vec<u8> {
        self.packed_log_key(log)
            .unwrap_or_else(|| self.sorted_log_key(log).into_bytes())
    }

    fn sorted_log_key(&self, log: &SendLog) -> String {
        match log {
            // Packed (`number_record.rs`); these were their sorted sets'
            // names before issue 30, and are the legacy names adopted from.
            SendLog::Phone(subject) => format!("{}:{{{subject}}}:sends", self.prefix),
            SendLog::Client(client) => {
                format!("{}:{{{client}}}:client-sends", self.prefix)
            }
            // Listed caller names are [A-Za-z0-9._-]; an unlisted caller's SAN
            // (a URI) could hold braces, which would change the hash tag.
            SendLog::Caller(name) => format!(
                "{}:{{caller:{}}}:caller-sends",
                self.prefix,
                name.replace(['{', '}'], "_")
            ),
            SendLog::Anonymous => format!("{}:{{anonymous}}:sends", self.prefix),
            SendLog::Global => format!("{}:{{global}}:sends", self.prefix),
            SendLog::ClientVerifies(client) => {
                format!("{}:{{{client}}}:client-verifies", self.prefix)
            }
            SendLog::CallerVerifies(name) => format!(
                "{}:{{caller:{}}}:caller-verifies",
                self.prefix,
                name.replace(['{', '}'], "_")
            ),
            SendLog::AnonymousVerifies => format!("{}:{{anonymous}}:verifies", self.prefix),
            SendLog::GlobalVerifies => format!("{}:{{global}}:verifies", self.prefix),
        }
    }

    pub(super) async fn record_send_script(
        &self,
        log: &SendLog,
        rules: &[RateRule],
    ) -> Result<SendDecision, StoreError> {
        if let Some(key) = self.packed_log_key(log) {
            let nonce = random_nonce();
            let mut invocation = self.scripts.record_packed_send.key(key);
            for legacy in self.legacy_keys(log).await {
                invocation.key(legacy);
            }
            invocation.arg(nonce).arg(packed_log_field(log));
            for rule in rules {
                invocation.arg(rule.limit).arg(millis(rule.period));
            }
            let reply: Vec<Value> = self.run(&invocation).await?;
            return packed_send_decision(&reply, rules, nonce);
        }
        // Random, so two replicas never pick the same sorted-set member.
        let token = random_token();
        let mut invocation = self.scripts.record_send.key(self.send_log_key(log));
        invocation.arg(&token);
        for rule in rules {
            invocation.arg(rule.limit).arg(millis(rule.period));
        }
        let reply: Vec<Value> = self.run(&invocation).await?;
        send_decision(&reply, rules, token)
    }

    /// `refund_packed_send.lua` or `refund_send.lua`, as `log` is kept.
    pub(super) async fn refund_send_script(
        &self,
        log: &SendLog,
        token: &str,
    ) -> Result<(), StoreError> {
        let invocation = match self.packed_log_key(log) {
            Some(key) => {
                let mut invocation = self.scripts.refund_packed_send.key(key);
                for legacy in self.legacy_keys(log).await {
                    invocation.key(legacy);
                }
                invocation.arg(token).arg(packed_log_field(log));
                invocation
            }
            None => {
                let mut invocation = self.scripts.refund_send.key(self.send_log_key(log));
                invocation.arg(token);
                invocation
            }
        };
        let _removed: i64 = self.run(&invocation).await?;
        Ok(())
    }
}

/// `record_packed_send.lua`'s reply to a send counted with `nonce`: its
/// token is the send's time and the nonce.
pub(super) fn packed_send_decision(
    reply: &[Value],
    rules: &[RateRule],
    nonce: u16,
) -> Result<SendDecision, StoreError> {
    match send_decision(reply, rules, String::new())? {
        SendDecision::Admitted {
            next_allowed_in, ..
        } => {
            let (_, numbers) = split_reply(reply)?;
            let sent_at_ms = number_at(&numbers, 1)?;
            Ok(SendDecision::Admitted {
                token: packed_token(sent_at_ms, nonce),
                next_allowed_in,
                sent_at_ms: Some(sent_at_ms),
            })
        }
        refused => Ok(refused),
    }
}

/// `record_send.lua`'s reply to a send counted with `token` under `rules`.
pub(super) fn send_decision(
    reply: &[Value],
    rules: &[RateRule],
    token: String,
) -> Result<SendDecision, StoreError> {
    let (status, numbers) = split_reply(reply)?;
    match status.as_str() {
        "admitted" => Ok(SendDecision::Admitted {
            token,
            next_allowed_in: Duration::from_millis(number_at(&numbers, 0)?),
            sent_at_ms: None,
        }),
        "refused" => {
            let violations = numbers
                .chunks(2)
                .map(|pair| {
                    let index =
                        usize::try_from(*pair.first().unwrap_or(&u64::MAX)).unwrap_or(usize::MAX);
                    let rule = rules.get(index).ok_or_else(|| {
                        StoreError::Protocol(format!("record_send named rule {index}"))
                    })?;
                    Ok(Violation {
                        kind: rule.kind,
                        retry_after: Duration::from_millis(number_at(pair, 1)?),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(SendDecision::Refused { violations })
        }
        other => Err(StoreError::Protocol(format!(
            "record_send replied `{other}`"
        ))),
    }
}

/// 64 random bits in hex: unique across replicas without coordination.
pub(super) fn random_token() -> String {
    format!("{:016x}", OsRng.unwrap_err().random::<u64>())
}

/// `count` tokens like [`random_token`]'s from one read of the OS's
/// generator: one system call for a whole SendOtp rather than one each.
pub(super) fn random_tokens(count: usize) -> Vec<String> {
    let mut bytes = vec![0_u8; count * 8];
    OsRng.unwrap_err().fill_bytes(&mut bytes);
    bytes
        .chunks_exact(8)
        .map(|chunk| {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            format!("{:016x}", u64::from_le_bytes(word))
        })
        .collect()
}

/// `{status, n1, n2, ...}` from a script.
pub(super) fn split_reply(reply: &[Value]) -> Result<(String, Vec<u64>), StoreError> {
    let (status, numbers) = reply
        .split_first()
        .ok_or_else(|| StoreError::Protocol("script replied nothing".into()))?;
    Ok((status_text(status)?, numbers_in(numbers)?))
}

/// A script's status (its reply's first item).
pub(super) fn status_text(status: &Value) -> Result<String, StoreError> {
    match status {
        Value::BulkString(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Ok(text.clone()),
        other => Err(StoreError::Protocol(format!("script status {other:?}"))),
    }
}

/// Numbers a script replied, none negative.
pub(super) fn numbers_in(items: &[Value]) -> Result<Vec<u64>, StoreError> {
    items
        .iter()
        .map(|item| match item {
            Value::Int(n) => u64::try_from(*n)
                .map_err(|_| StoreError::Protocol(format!("negative number {n} in reply"))),
            other => Err(StoreError::Protocol(format!(
                "expected a number, got {other:?}"
            ))),
        })
        .collect()
}

pub(super) fn number_at(numbers: &[u64], index: usize) -> Result<u64, StoreError> {
    numbers
        .get(index)
        .copied()
        .ok_or_else(|| StoreError::Protocol(format!("reply lacks item {index}")))
}
