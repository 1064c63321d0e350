//! One VerifyOtp's store work as a single request: count the guess in each
//! verify log, then check the code. [`check_in_steps`] is the one definition
//! of the order and of what is taken back when a log refuses; a store that
//! can do it all in one atomic call (Redis on one server or behind Sentinel,
//! `lua/count_verify_and_consume.lua`) must answer exactly as it would.

use futures_util::future::join_all;

use super::{
    OtpStore, SendDecision, SendLog, StoreError, VerifyOutcome, Violation, take_back_sends,
};
use crate::{
    abuse::RateRule,
    domain::{CodeDigest, SubjectKey},
    metrics::timed_store,
};

/// What one VerifyOtp asks of the store.
#[derive(Debug, Clone, Copy)]
pub struct VerifyPlan<'a> {
    /// The logs the guess is counted in, with their rules; the first that
    /// refuses decides, and no log keeps the count.
    pub logs: &'a [(SendLog, Vec<RateRule>)],
    /// Whose code is checked.
    pub subject: &'a SubjectKey,
    /// The code's digest under each secret of the key ring.
    pub candidates: &'a [CodeDigest],
    /// The guess budget.
    pub max_attempts: u32,
}

/// What [`OtpStore::count_verify_and_consume`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The first log that refused; nothing is counted and the code was not
    /// compared (no guess spent).
    Refused {
        /// Every rule of that log that refused, with its own delay.
        violations: Vec<Violation>,
    },
    /// Counted in every log, and the code checked.
    Checked(VerifyOutcome),
}

/// The plan run as one store call per step (the logs at once, then the
/// check), each timed under its own operation name (`record_verify`,
/// `verify_and_consume`): the default of
/// [`OtpStore::count_verify_and_consume`]. A log that refuses, or fails,
/// takes back every count. A log a full in-memory store has no room for is
/// skipped: numbers it holds must keep verifying, and the wrong-guess cap
/// still holds.
pub async fn check_in_steps<S: OtpStore + ?Sized>(
    store: &S,
    plan: VerifyPlan<'_>,
) -> Result<CheckOutcome, StoreError> {
    let decisions = join_all(
        plan.logs
            .iter()
            .map(|(log, rules)| timed_store("record_verify", store.record_send(log, rules))),
    )
    .await;
    let mut counted = Vec::with_capacity(plan.logs.len());
    let mut refused: Option<Vec<Violation>> = None;
    let mut failure: Option<StoreError> = None;
    for ((log, _), decision) in plan.logs.iter().zip(decisions) {
        match decision {
            Ok(SendDecision::Admitted { token, .. }) => counted.push((log.clone(), token)),
            Ok(SendDecision::Refused { violations }) => {
                refused.get_or_insert(violations);
            }
            Err(StoreError::Full) => {
                tracing::debug!("store full: a guess not counted in a new verify log");
            }
            Err(err) => failure = Some(err),
        }
    }
    if refused.is_some() || failure.is_some() {
        take_back_sends(store, &counted, None).await;
    }
    if let Some(err) = failure {
        return Err(err);
    }
    if let Some(violations) = refused {
        return Ok(CheckOutcome::Refused { violations });
    }
    let check = store.verify_and_consume(plan.subject, plan.candidates, plan.max_attempts);
    Ok(CheckOutcome::Checked(
        timed_store("verify_and_consume", check).await?,
    ))
}
