//! Reading the replies of the scripts on a number's code (`put_code.lua`,
//! `verify_and_consume.lua`, `lock_remaining.lua`, and the one-call scripts
//! that end in them): a `{status, number}` pair (or a number) as the
//! store's outcome types.

use std::time::Duration;

use crate::store::{PutOutcome, StoreError, VerifyOutcome};

/// A script's `{status, number}` reply as a Rust value.
pub(super) fn reply_number(status: &str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Protocol(format!("`{status}` with out-of-range value {value}")))
}

/// `verify_and_consume.lua`'s reply.
pub(super) fn verify_outcome(status: &str, value: i64) -> Result<VerifyOutcome, StoreError> {
    match status {
        "approved" => Ok(VerifyOutcome::Approved {
            sent_at_ms: u64::try_from(value).ok().filter(|sent| *sent > 0),
        }),
        "incorrect" => Ok(VerifyOutcome::Incorrect {
            attempts_remaining: reply_number(status, value)?,
        }),
        "expired" => Ok(VerifyOutcome::Expired),
        "locked" => Ok(VerifyOutcome::Locked),
        other => Err(StoreError::Protocol(format!(
            "verify_and_consume replied `{other}`"
        ))),
    }
}

/// `put_code.lua`'s reply.
pub(super) fn put_outcome(status: &str, value: i64) -> Result<PutOutcome, StoreError> {
    match status {
        "stored" => Ok(PutOutcome::Stored {
            attempts_remaining: reply_number(status, value)?,
        }),
        "locked" => Ok(PutOutcome::Locked {
            retry_after: Duration::from_millis(u64::from(reply_number(status, value)?)),
        }),
        other => Err(StoreError::Protocol(format!("put_code replied `{other}`"))),
    }
}

/// `lock_remaining.lua`'s reply: the ms until the lock ends, negative when
/// the number is not locked.
pub(super) fn lock_left(left_ms: i64) -> Option<Duration> {
    u64::try_from(left_ms).ok().map(Duration::from_millis)
}
