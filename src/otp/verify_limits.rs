//! Counting a VerifyOtp against the verify limits before the guess reaches
//! the code: per `client_key` (or the one bucket of calls without one) and
//! per authenticated caller, in the store's sliding logs, like sends.

use futures_util::future::join_all;

use super::{OtpFlow, VerifyRequest};
use crate::{
    abuse::RateRule,
    error::Error,
    metrics::timed_store,
    store::{SendDecision, SendLog, StoreError, Violation, take_back_sends},
};

impl OtpFlow {
    /// Counts the guess in each of its logs at once (one store call each).
    /// If any log refuses, the counts the others made are taken back and the
    /// call is refused with every violated limit; nothing is left counted.
    pub(super) async fn count_verify(&self, request: &VerifyRequest<'_>) -> Result<(), Error> {
        let logs = self.verify_logs(request);
        let decisions =
            join_all(logs.iter().map(|(log, rules)| {
                timed_store("record_send", self.store.record_send(log, rules))
            }))
            .await;
        let mut counted = Vec::with_capacity(logs.len());
        let mut violations: Vec<Violation> = Vec::new();
        let mut failure: Option<StoreError> = None;
        for ((log, _), decision) in logs.into_iter().zip(decisions) {
            match decision {
                Ok(SendDecision::Admitted { token, .. }) => counted.push((log, token)),
                Ok(SendDecision::Refused {
                    violations: refused,
                }) => violations.extend(refused),
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
    /// every call without one shares) and its caller's.
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
        logs
    }
}
