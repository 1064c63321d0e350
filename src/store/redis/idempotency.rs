//! Idempotency records on Redis: one hash per key, claimed, completed and
//! released by `claim_idempotency.lua`, `complete_idempotency.lua` and
//! `release_idempotency.lua`.

use std::time::Duration;

use super::{RedisStore, millis, send_log::random_token};
use crate::{
    domain::SubjectKey,
    store::{ClaimOwner, IdempotencyClaim, RecordedSend, StoreError},
};

impl RedisStore {
    /// The record of one idempotency key.
    pub(super) fn idempotency_key(&self, key: &SubjectKey) -> String {
        format!("{}:{{{key}}}:idempotency", self.prefix)
    }

    pub(super) async fn claim_idempotency_script(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        in_progress_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        // Known only to this call: completing or releasing the claim needs it.
        let owner = random_token();
        let reply: Vec<String> = self
            .run(
                self.scripts
                    .claim_idempotency
                    .key(self.idempotency_key(key))
                    .arg(subject.to_string())
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

/// `expires:length:attempts:resend`, then `:channel` unless it is SMS (0),
/// so an SMS record reads as before channels — small, and readable in
/// `redis-cli`.
pub(super) fn encode_response(response: &RecordedSend) -> String {
    let mut encoded = format!(
        "{}:{}:{}:{}",
        response.expires_in_secs,
        response.code_length,
        response.attempts_remaining,
        response.resend_after_secs
    );
    if response.channel != 0 {
        encoded.push_str(&format!(":{}", response.channel));
    }
    encoded
}

fn decode_response(raw: &str) -> Result<RecordedSend, StoreError> {
    let fields: Vec<u32> = raw
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| StoreError::Protocol(format!("bad recorded response `{raw}`")))?;
    match fields.as_slice() {
        // Four fields: an SMS record (or one written before channels).
        [expires, length, attempts, resend, channel @ ..] if channel.len() <= 1 => {
            Ok(RecordedSend {
                expires_in_secs: *expires,
                code_length: *length,
                attempts_remaining: *attempts,
                resend_after_secs: *resend,
                channel: channel.first().copied().unwrap_or(0),
            })
        }
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
            channel: 0,
        };
        assert_eq!(encode_response(&response), "120:6:5:30");
        assert_eq!(decode_response("120:6:5:30").expect("valid"), response);
        let voice = RecordedSend {
            channel: 2,
            ..response
        };
        assert_eq!(encode_response(&voice), "120:6:5:30:2");
        assert_eq!(decode_response("120:6:5:30:2").expect("valid"), voice);
        assert!(decode_response("120:6:5:30:2:1").is_err());
        assert!(decode_response("120:6").is_err());
        assert!(decode_response("a:b:c:d").is_err());
    }
}
