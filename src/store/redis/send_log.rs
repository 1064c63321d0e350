//! Send logs on Redis: one sorted set per log, counted and refunded by
//! `record_send.lua` and `refund_send.lua`.

use std::time::Duration;

use deadpool_redis::redis::Value;
use rand::{Rng, RngCore, TryRngCore, rngs::OsRng};

use super::{RedisStore, millis};
use crate::{
    abuse::RateRule,
    store::{SendDecision, SendLog, StoreError, Violation},
};

impl RedisStore {
    /// The sorted set of one send log. A phone's log shares the phone's hash
    /// tag (one slot with its code record); the anonymous and global logs
    /// are one hot key each. A client's or caller's verify log shares the
    /// slot of its send log.
    pub(super) fn send_log_key(&self, log: &SendLog) -> String {
        match log {
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
