//! Redis side of the abuse-protection operations: send logs and idempotency
//! records. Each is one Lua script on keys that hash-tag their own subject.

use std::time::Duration;

use deadpool_redis::redis::Value;
use rand::{Rng, TryRngCore, rngs::OsRng};

use super::{RedisStore, millis};
use crate::{
    abuse::RateRule,
    domain::SubjectKey,
    store::{
        ClaimOwner, IdempotencyClaim, RecordedSend, SendDecision, SendLog, StoreError, Violation,
    },
};

impl RedisStore {
    /// The sorted set of one send log. A phone's log shares the phone's hash
    /// tag (one slot with its code record); the global log is one hot key.
    pub(super) fn send_log_key(&self, log: &SendLog) -> String {
        match log {
            SendLog::Phone(subject) => format!("{}:{{{}}}:sends", self.prefix, subject.as_str()),
            SendLog::Client(client) => {
                format!("{}:{{{}}}:client-sends", self.prefix, client.as_str())
            }
            // Caller names are [A-Za-z0-9._-] (or a SAN truncated, never braces
            // that matter: the tag ends at the first `}`, so one is hashed out).
            SendLog::Caller(name) => format!(
                "{}:{{caller:{}}}:caller-sends",
                self.prefix,
                name.replace(['{', '}'], "_")
            ),
            SendLog::Global => format!("{}:{{global}}:sends", self.prefix),
        }
    }

    /// The record of one idempotency key.
    pub(super) fn idempotency_key(&self, key: &SubjectKey) -> String {
        format!("{}:{{{}}}:idempotency", self.prefix, key.as_str())
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
        let (status, numbers) = split_reply(&reply)?;
        match status.as_str() {
            "admitted" => Ok(SendDecision::Admitted {
                token,
                next_allowed_in: Duration::from_millis(number_at(&numbers, 0)?),
            }),
            "refused" => {
                let violations = numbers
                    .chunks(2)
                    .map(|pair| {
                        let index = usize::try_from(*pair.first().unwrap_or(&u64::MAX))
                            .unwrap_or(usize::MAX);
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

    pub(super) async fn claim_idempotency_script(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        in_progress_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let owner = random_token();
        let reply: Vec<String> = self
            .run(
                self.scripts
                    .claim_idempotency
                    .key(self.idempotency_key(key))
                    .arg(subject.as_str())
                    .arg(millis(in_progress_ttl))
                    .arg(&owner),
            )
            .await?;
        match reply.as_slice() {
            [status] if status == "claimed" => Ok(IdempotencyClaim::Claimed {
                owner: ClaimOwner(owner),
            }),
            [status] if status == "in_progress" => Ok(IdempotencyClaim::InProgress),
            [status] if status == "other_subject" => Ok(IdempotencyClaim::OtherSubject),
            [status, response] if status == "completed" => {
                Ok(IdempotencyClaim::Completed(decode_response(response)?))
            }
            other => Err(StoreError::Protocol(format!(
                "claim_idempotency replied {other:?}"
            ))),
        }
    }
}

/// 64 random bits in hex: unique across replicas without coordination.
fn random_token() -> String {
    format!("{:016x}", OsRng.unwrap_err().random::<u64>())
}

/// `{status, n1, n2, ...}` from a script.
fn split_reply(reply: &[Value]) -> Result<(String, Vec<u64>), StoreError> {
    let mut items = reply.iter();
    let status = match items.next() {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(Value::SimpleString(text)) => text.clone(),
        other => return Err(StoreError::Protocol(format!("script status {other:?}"))),
    };
    let numbers = items
        .map(|item| match item {
            Value::Int(n) => u64::try_from(*n)
                .map_err(|_| StoreError::Protocol(format!("negative number {n} in reply"))),
            other => Err(StoreError::Protocol(format!(
                "expected a number, got {other:?}"
            ))),
        })
        .collect::<Result<_, _>>()?;
    Ok((status, numbers))
}

fn number_at(numbers: &[u64], index: usize) -> Result<u64, StoreError> {
    numbers
        .get(index)
        .copied()
        .ok_or_else(|| StoreError::Protocol(format!("reply lacks item {index}")))
}

/// `expires:length:attempts:resend` — small, and readable in `redis-cli`.
pub(super) fn encode_response(response: &RecordedSend) -> String {
    format!(
        "{}:{}:{}:{}",
        response.expires_in_secs,
        response.code_length,
        response.attempts_remaining,
        response.resend_after_secs
    )
}

fn decode_response(raw: &str) -> Result<RecordedSend, StoreError> {
    let fields: Vec<u32> = raw
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| StoreError::Protocol(format!("bad recorded response `{raw}`")))?;
    match fields.as_slice() {
        [expires, length, attempts, resend] => Ok(RecordedSend {
            expires_in_secs: *expires,
            code_length: *length,
            attempts_remaining: *attempts,
            resend_after_secs: *resend,
        }),
        _ => Err(StoreError::Protocol(format!(
            "bad recorded response `{raw}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_responses_round_trip() {
        let response = RecordedSend {
            expires_in_secs: 120,
            code_length: 6,
            attempts_remaining: 5,
            resend_after_secs: 30,
        };
        assert_eq!(encode_response(&response), "120:6:5:30");
        assert_eq!(decode_response("120:6:5:30").expect("valid"), response);
        assert!(decode_response("120:6").is_err());
        assert!(decode_response("a:b:c:d").is_err());
    }
}
