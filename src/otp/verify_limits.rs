//! Counting a VerifyOtp against the verify limits before the guess reaches
//! the code: per `client_key` (or the one bucket of calls without one), per
//! authenticated caller and service-wide, in the store's sliding logs, like
//! sends.

use futures_util::future::join_all;

use super::{OtpFlow, VerifyRequest};
use crate::{
    abuse::RateRule,
    error::Error,
    metrics::timed_store,
    store::{SendDecision, SendLog, StoreError, Violation, take_back_sends},
};

impl OtpFlow {
    /// Counts the guess in each of its logs at once (one store call each,
    /// timed as `record_verify`). If any log refuses, the counts the others
    /// made are taken back and the call is refused with every violated
    /// limit; nothing is left counted. A log a full in-memory store has no
    /// room for is skipped: numbers it holds must keep verifying, and the
    /// wrong-guess cap still holds.
    pub(super) async fn count_verify(&self, request: &VerifyRequest<'_>) -> Result<(), Error> {
        let logs = self.verify_logs(request);
        let decisions =
            join_all(logs.iter().map(|(log, rules)| {
                timed_store("record_verify", self.store.record_send(log, rules))
            }))
            .await;
        let mut counted = Vec::with_capacity(logs.len());
        let mut violations: Vec<Violation> = Vec::new();
        let mut failure: Option<StoreError> = None;
        for ((log, _), decision) in logs.into_iter().zip(decisions) {
            match decision {
                Ok(SendDecision::Admitted { token, .. }) => counted.push((log, token)),
                Ok(SendDecision::Refused { violations: full }) => violations.extend(full),
                Err(StoreError::Full) => {
                    tracing::debug!("store full: a guess not counted in a new verify log");
                }
                Err(err) => failure = Some(err),
            }
        }
        if failure.is_none() && violations.is_empty() {
            return Ok(());
        }
        take_back_sends(self.store.as_ref(), &counted, None).await;
        match failure {
            Some(err) => Err(err.into()),
            None => Err(Error::VerifyLimited { violations }),
        }
    }

    /// The logs one guess is counted in: its `client_key`'s (or the bucket
    /// every call without one shares), its caller's and the service's; a log
    /// without rules (the global cap off) is skipped.
    fn verify_logs(&self, request: &VerifyRequest<'_>) -> Vec<(SendLog, Vec<RateRule>)> {
        let limits = &self.abuse.verify_limits;
        let mut logs = vec![match request.client_key {
            Some(client) => (
                SendLog::ClientVerifies(self.secret.client_subject(client)),
                limits.client_rules(),
            ),
            None => (SendLog::AnonymousVerifies, limits.anonymous_rules()),
        }];
        if let Some(caller) = request.caller {
            logs.push((
                SendLog::CallerVerifies(caller.name().to_owned()),
                limits.caller_rules(),
            ));
        }
        logs.push((SendLog::GlobalVerifies, limits.global_rules()));
        logs.retain(|(_, rules)| !rules.is_empty());
        logs
    }
}
