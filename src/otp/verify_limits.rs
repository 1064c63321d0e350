//! The verify limits a VerifyOtp is counted against before its guess reaches
//! the code: per `client_key` (or the one bucket of calls without one), per
//! authenticated caller and service-wide, in the store's sliding logs, like
//! sends (`OtpStore::count_verify_and_consume` counts and checks).

use super::{OtpFlow, VerifyRequest};
use crate::{abuse::RateRule, store::SendLog};

impl OtpFlow {
    /// The logs one guess is counted in: its `client_key`'s (or the bucket
    /// every call without one shares), its caller's and the service's; a log
    /// without rules (the global cap off) is skipped.
    pub(super) fn verify_logs(&self, request: &VerifyRequest<'_>) -> Vec<(SendLog, Vec<RateRule>)> {
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
