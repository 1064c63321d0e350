//! Idempotent SendOtp: the first call with a key sends; retries with the same
//! key wait for it and get its response instead of a second code.

use std::time::Duration;

use tokio::time::Instant;

use super::{OtpFlow, SentCode};
use crate::{
    domain::SubjectKey,
    error::Error,
    metrics::timed_store,
    store::{IdempotencyClaim, RecordedSend},
};

/// First poll interval while a duplicate call waits for the first call with
/// its idempotency key; it doubles up to [`IDEMPOTENCY_POLL_MAX`], so a crowd
/// of waiting retries costs the store little.
const IDEMPOTENCY_POLL_FIRST: Duration = Duration::from_millis(20);
/// Longest poll interval while waiting.
const IDEMPOTENCY_POLL_MAX: Duration = Duration::from_millis(500);

impl OtpFlow {
    /// Claims `key` for `subject` (one atomic store call per try). `None`:
    /// this call holds the key and must send. `Some`: an earlier call with
    /// the key already sent, and this is its response. While the first call
    /// is still sending, polls with backoff until the claim's lifetime ends.
    pub(super) async fn claim_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
    ) -> Result<Option<SentCode>, Error> {
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
                IdempotencyClaim::Claimed => return Ok(None),
                IdempotencyClaim::Completed(first) => {
                    tracing::info!("idempotent retry: returning the first response");
                    return Ok(Some(first.into()));
                }
                IdempotencyClaim::OtherSubject => return Err(Error::IdempotencyKeyReused),
                IdempotencyClaim::InProgress if Instant::now() < give_up => {
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(IDEMPOTENCY_POLL_MAX);
                }
                IdempotencyClaim::InProgress => return Err(Error::IdempotencyKeyBusy),
            }
        }
    }

    /// Records a successful send's response for retries, or frees the key
    /// after a failed one so a retry may try again.
    pub(super) async fn settle_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        result: &Result<SentCode, Error>,
    ) {
        let settled = match result {
            Ok(sent) => {
                self.store
                    .complete_idempotency(
                        key,
                        subject,
                        &RecordedSend::from(*sent),
                        self.policy.code_lifetime(),
                    )
                    .await
            }
            Err(_) => self.store.release_idempotency(key).await,
        };
        if let Err(err) = settled {
            // The send itself is decided; a retry with this key may send once
            // more after the in-progress claim lapses, which is logged.
            tracing::error!(error = %err, "could not settle the idempotency key");
        }
    }
}
