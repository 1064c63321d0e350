//! Idempotent SendOtp: the first call with a key sends; retries with the same
//! key wait for it and get its response instead of a second code.

use std::time::Duration;

use tokio::time::Instant;

use super::{OtpFlow, SentCode};
use crate::{
    domain::SubjectKey,
    error::Error,
    metrics::timed_store,
    store::{ClaimOwner, IdempotencyClaim, RecordedSend},
};

/// What claiming an idempotency key gave this call.
pub(super) enum Claim {
    /// This call holds the key and must send; only this owner token can
    /// settle the claim.
    Owned(ClaimOwner),
    /// An earlier call with the key already sent; this is its response.
    Answered(SentCode),
}

/// First poll interval while a duplicate call waits for the first call with
/// its idempotency key; it doubles up to [`IDEMPOTENCY_POLL_MAX`], so a crowd
/// of waiting retries costs the store little.
const IDEMPOTENCY_POLL_FIRST: Duration = Duration::from_millis(20);
/// Longest poll interval while waiting.
const IDEMPOTENCY_POLL_MAX: Duration = Duration::from_millis(500);

impl OtpFlow {
    /// Claims `key` for `subject` (one atomic store call per try). While the
    /// first call is still sending, polls with backoff until the claim's
    /// lifetime ends.
    pub(super) async fn claim_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
    ) -> Result<Claim, Error> {
        let give_up = Instant::now() + self.abuse.idempotency_claim_ttl;
        let mut poll = IDEMPOTENCY_POLL_FIRST;
        loop {
            match timed_store(
                "claim_idempotency",
                self.store
                    .claim_idempotency(key, subject, self.abuse.idempotency_claim_ttl),
            )
            .await?
            {
                IdempotencyClaim::Claimed { owner } => return Ok(Claim::Owned(owner)),
                IdempotencyClaim::Completed(first) => {
                    tracing::info!("idempotent retry: returning the first response");
                    return Ok(Claim::Answered(first.into()));
                }
                IdempotencyClaim::OtherSubject => return Err(Error::IdempotencyKeyReused),
                IdempotencyClaim::InProgress if Instant::now() < give_up => {
                    if poll == IDEMPOTENCY_POLL_FIRST {
                        tracing::debug!(
                            "idempotency key held by a call still sending: waiting for its answer"
                        );
                    }
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(IDEMPOTENCY_POLL_MAX);
                }
                IdempotencyClaim::InProgress => return Err(Error::IdempotencyKeyBusy),
            }
        }
    }

    /// Records a successful send's response for retries, or frees the key
    /// after a failed one so a retry may try again — only while `owner`
    /// still holds the claim.
    pub(super) async fn settle_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
        result: &Result<SentCode, Error>,
    ) {
        let settled = match result {
            Ok(sent) => {
                self.store
                    .complete_idempotency(
                        key,
                        owner,
                        &RecordedSend::from(*sent),
                        self.policy.code_lifetime(),
                    )
                    .await
            }
            Err(_) => self.store.release_idempotency(key, owner).await,
        };
        match settled {
            Ok(true) => {}
            // Our claim lapsed mid-send and another call may hold the key now:
            // its claim is left alone (the owner token is what protects it).
            Ok(false) => tracing::warn!(
                "idempotency claim expired before the send finished; the key was left to its new holder"
            ),
            // The send itself is decided; a retry with this key may send once
            // more after the in-progress claim lapses, which is logged.
            Err(err) => tracing::error!(error = %err, "could not settle the idempotency key"),
        }
    }
}
