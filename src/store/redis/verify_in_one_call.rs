//! A VerifyOtp's store work in one EVALSHA (`count_verify_and_consume.lua`):
//! on one server or a Sentinel-managed master, where the verify logs and the
//! code record may be touched by one script. Each step's reply is read by
//! the same function that reads the step's own script.

use deadpool_redis::redis::Value;

use super::{
    RedisStore, millis,
    number_record::kept_digest,
    send_log::{random_tokens, send_decision, split_reply, status_text},
    verify_outcome,
};
use crate::store::{CheckOutcome, SendDecision, SendLog, StoreError, VerifyPlan};

impl RedisStore {
    pub(super) async fn count_verify_and_consume_script(
        &self,
        plan: VerifyPlan<'_>,
    ) -> Result<CheckOutcome, StoreError> {
        // Random, so two replicas never pick the same sorted-set member.
        let tokens = random_tokens(plan.logs.len());
        let mut invocation = self.scripts.count_verify_and_consume.prepare_invoke();
        invocation.arg(plan.logs.len());
        for ((log, rules), token) in plan.logs.iter().zip(&tokens) {
            invocation.key(self.send_log_key(log));
            invocation.arg(token).arg(rules.len());
            for rule in rules {
                invocation.arg(rule.limit).arg(millis(rule.period));
            }
        }
        invocation
            .key(self.record_key(plan.subject))
            .arg(plan.max_attempts);
        for legacy in self.legacy_keys(&SendLog::Phone(*plan.subject)).await {
            invocation.key(legacy);
        }
        for candidate in plan.candidates {
            invocation.arg(kept_digest(candidate));
        }
        let reply: Vec<Value> = self.run(&invocation).await?;
        read_outcome(&reply, &plan)
    }
}

/// The script's reply as the outcome [`crate::store::check_in_steps`] would
/// have given.
fn read_outcome(reply: &[Value], plan: &VerifyPlan<'_>) -> Result<CheckOutcome, StoreError> {
    let protocol = |what: String| StoreError::Protocol(format!("count_verify_and_consume {what}"));
    let (status, parts) = reply
        .split_first()
        .ok_or_else(|| protocol("replied nothing".into()))?;
    match (status_text(status)?.as_str(), parts) {
        ("refused", [Value::Int(index), Value::Array(step_reply)]) => {
            let rules = usize::try_from(*index)
                .ok()
                .and_then(|index| plan.logs.get(index))
                .map(|(_, rules)| rules.as_slice())
                .ok_or_else(|| protocol(format!("refused by log {index}")))?;
            match send_decision(step_reply, rules, String::new())? {
                SendDecision::Refused { violations } => Ok(CheckOutcome::Refused { violations }),
                SendDecision::Admitted { .. } => Err(protocol("refused with an admission".into())),
            }
        }
        ("checked", [Value::Array(check_reply)]) => {
            let (status, numbers) = split_reply(check_reply)?;
            let value = numbers
                .first()
                .and_then(|value| i64::try_from(*value).ok())
                .ok_or_else(|| protocol(format!("checked `{status}` {numbers:?}")))?;
            Ok(CheckOutcome::Checked(verify_outcome(&status, value)?))
        }
        (other, _) => Err(protocol(format!("replied `{other}` {parts:?}"))),
    }
}
