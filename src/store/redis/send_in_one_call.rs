//! A SendOtp's store work in one EVALSHA (`count_send_and_put_code.lua`):
//! on one server or a Sentinel-managed master, where every key of the plan
//! (the spend windows' too) may be touched by one script. Each step's reply
//! is read by the same function that reads the step's own script.

use std::time::Duration;

use deadpool_redis::redis::{ScriptInvocation, Value};

use super::{
    RedisStore, lock_left, millis,
    number_record::{kept_digest, packed_log_field, packed_token, random_nonce},
    pumping::prefix_decision,
    put_outcome,
    send_log::{number_at, numbers_in, random_tokens, send_decision, split_reply, status_text},
    spend::{HandedSpendKeys, spend_decision},
};
use crate::{
    spend::SpendCap,
    store::{
        PrefixDecision, PrefixStep, PrefixSuspension, PutOutcome, SendDecision, SendLog,
        SendOutcome, SendPlan, SpendDecision, SpendReservation, SpendStep, StoreError, StoredSend,
        send_plan::refusal_of,
        spend_window::{bucket_ms, reservation_at},
    },
};

/// The most spend windows the driver hands `reserve_spend` (one per cap).
const MAX_SPEND_WINDOWS: usize = 3;
const _: () = assert!(SpendCap::ALL.len() == MAX_SPEND_WINDOWS);

impl RedisStore {
    pub(super) async fn count_send_and_put_code_script(
        &self,
        plan: SendPlan<'_>,
    ) -> Result<SendOutcome, StoreError> {
        let log_tokens = self.log_tokens(&plan);
        let spend = spend_step(&plan)?;
        let spend_keys = spend.map_or_else(HandedSpendKeys::default, |step| {
            self.spend_keys_to_hand(step.windows)
        });
        let mut invocation = self.scripts.count_send_and_put_code.prepare_invoke();
        let prefix_keys = if plan.prefix.is_some() { 7 } else { 0 };
        invocation.arg(plan.logs.len());
        invocation.arg(plan.logs.len() + prefix_keys + spend_keys.count() + 1);
        let legacy_keys = self.add_logs(&mut invocation, &plan, &log_tokens).await;
        let prefix_token = self.add_prefix_step(&mut invocation, plan.prefix);
        let code = plan.code;
        let record_legacy = self.legacy_keys(&SendLog::Phone(*code.subject)).await;
        spend_keys.add_to(&mut invocation);
        invocation
            .key(self.record_key(code.subject))
            .arg(kept_digest(code.digest))
            .arg(millis(code.lifetime))
            .arg(code.max_attempts)
            .arg(record_legacy.len());
        add_spend_args(&mut invocation, spend);
        for key in legacy_keys.into_iter().chain(record_legacy) {
            invocation.key(key);
        }
        let reply: Vec<Value> = self.run(&invocation).await?;
        let tokens = Tokens {
            logs: log_tokens,
            prefix: prefix_token,
        };
        let outcome = read_outcome(&reply, &plan, spend, tokens)?;
        if matches!(
            outcome,
            SendOutcome::Stored(_) | SendOutcome::SpendRefused { .. }
        ) {
            // The spend step ran (a send refused before it did not reach it).
            self.spend_windows_reserved_in(spend_keys);
        }
        Ok(outcome)
    }

    /// Each of `plan`'s logs: its key, and its arguments (`'p'`, nonce,
    /// field and count of legacy keys, or `'z'` and token; then its rules).
    /// Returns the packed logs' legacy keys, handed after the record's key.
    async fn add_logs(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        plan: &SendPlan<'_>,
        log_tokens: &[LogToken],
    ) -> Vec<Vec<u8>> {
        let mut legacy_keys = Vec::new();
        for ((log, rules), token) in plan.logs.iter().zip(log_tokens) {
            invocation.key(self.send_log_key(log));
            match token {
                LogToken::Packed(nonce) => {
                    let legacy = self.legacy_keys(log).await;
                    invocation
                        .arg("p")
                        .arg(*nonce)
                        .arg(packed_log_field(log))
                        .arg(legacy.len());
                    legacy_keys.extend(legacy);
                }
                LogToken::Sorted(token) => {
                    invocation.arg("z").arg(token);
                }
            }
            invocation.arg(rules.len());
            for rule in rules {
                invocation.arg(rule.limit).arg(millis(rule.period));
            }
        }
        legacy_keys
    }

    /// The prefix step's arguments (`'1'`, the send, whether a suspension
    /// refuses) or `'0'` when no prefix is judged; the send's member.
    fn add_prefix_step(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        prefix: Option<PrefixStep<'_>>,
    ) -> Option<String> {
        let Some(step) = prefix else {
            invocation.arg("0");
            return None;
        };
        invocation.arg("1");
        let member = self.add_prefix_send(invocation, &step);
        invocation.arg(if step.refuse_suspended { "1" } else { "0" });
        Some(member)
    }

    /// What the script names each of `plan`'s sends by. Random, so two
    /// replicas never pick the same sorted-set member (a packed log's send
    /// is told apart by its time and nonce).
    fn log_tokens(&self, plan: &SendPlan<'_>) -> Vec<LogToken> {
        random_tokens(plan.logs.len())
            .into_iter()
            .zip(plan.logs)
            .map(|(token, (log, _))| match self.packed_log_key(log) {
                Some(_) => LogToken::Packed(random_nonce()),
                None => LogToken::Sorted(token),
            })
            .collect()
    }
}

/// The plan's spend step, if it has a window (a step without one reserves
/// nothing anywhere, so the script is not handed it).
fn spend_step<'a>(plan: &SendPlan<'a>) -> Result<Option<SpendStep<'a>>, StoreError> {
    let spend = plan.spend.filter(|step| !step.windows.is_empty());
    let windows = spend.map_or(0, |step| step.windows.len());
    if windows > MAX_SPEND_WINDOWS {
        return Err(StoreError::Protocol(format!(
            "{windows} spend windows, the script takes {MAX_SPEND_WINDOWS}"
        )));
    }
    Ok(spend)
}

/// The spend step's arguments: its window count w (0: no step), then
/// `reserve_spend.lua`'s: the amount and each window's limit and bucket
/// width. (The script counts the spend keys handed from where they sit.)
fn add_spend_args(invocation: &mut ScriptInvocation<'_>, spend: Option<SpendStep<'_>>) {
    let Some(step) = spend else {
        invocation.arg(0);
        return;
    };
    invocation.arg(step.windows.len()).arg(step.amount.0);
    for window in step.windows {
        invocation.arg(window.limit.0).arg(bucket_ms(window.period));
    }
}

/// What the script was given to name each log's send by.
enum LogToken {
    /// A packed log's nonce: the token is the send's time and it.
    Packed(u16),
    /// A sorted set's member.
    Sorted(String),
}

/// The tokens the script was given.
struct Tokens {
    logs: Vec<LogToken>,
    prefix: Option<String>,
}

/// The script's reply as the outcome [`crate::store::count_in_steps`] would
/// have given.
fn read_outcome(
    reply: &[Value],
    plan: &SendPlan<'_>,
    spend: Option<SpendStep<'_>>,
    tokens: Tokens,
) -> Result<SendOutcome, StoreError> {
    let (status, parts) = reply
        .split_first()
        .ok_or_else(|| StoreError::Protocol("count_send_and_put_code replied nothing".into()))?;
    match (status_text(status)?.as_str(), parts) {
        ("refused", [Value::Int(index), step_reply, Value::Int(lock_ms)]) => {
            let rules = usize::try_from(*index)
                .ok()
                .and_then(|index| plan.logs.get(index))
                .map(|(_, rules)| rules.as_slice())
                .ok_or_else(|| StoreError::Protocol(format!("refused by log {index}")))?;
            match send_decision(items(step_reply)?, rules, String::new())? {
                SendDecision::Refused { violations } => {
                    Ok(refusal_of(violations, lock_left(*lock_ms)))
                }
                SendDecision::Admitted { .. } => Err(unexpected("refused", "an admission")),
            }
        }
        ("suspended", [prefix_reply]) => match prefix_step(plan.prefix, prefix_reply, None)? {
            (None, Some(suspension)) => Ok(SendOutcome::Suspended(suspension)),
            _ => Err(unexpected("suspended", "no suspension")),
        },
        ("locked", [put_reply, prefix_reply]) => {
            let (_, monitored) = prefix_step(plan.prefix, prefix_reply, None)?;
            match put_code(put_reply)? {
                PutOutcome::Locked { retry_after } => Ok(SendOutcome::Locked {
                    retry_after,
                    monitored,
                }),
                PutOutcome::Stored { .. } => Err(unexpected("locked", "a stored code")),
            }
        }
        ("spend_refused", [spend_reply, prefix_reply]) => {
            let (_, monitored) = prefix_step(plan.prefix, prefix_reply, None)?;
            match spend_reply_of(spend, spend_reply)? {
                Some(SpendDecision::Refused { refusals }) => Ok(SendOutcome::SpendRefused {
                    refusals,
                    monitored,
                }),
                _ => Err(unexpected("spend_refused", "no refusal")),
            }
        }
        ("stored", [put, prefix, next_allowed, sent_at, rest @ ..]) => {
            let replies = StepReplies {
                put,
                prefix,
                next_allowed,
                sent_at,
                spend: rest,
            };
            stored(plan, spend, tokens, &replies)
        }
        (other, _) => Err(StoreError::Protocol(format!(
            "count_send_and_put_code replied `{other}` {parts:?}"
        ))),
    }
}

/// The parts of a `stored` reply: the code's, the prefix step's, each
/// log's next allowed send and time of the send, and the spend step's
/// reply if the driver kept it.
struct StepReplies<'r> {
    put: &'r Value,
    prefix: &'r Value,
    next_allowed: &'r Value,
    sent_at: &'r Value,
    spend: &'r [Value],
}

/// A `stored` reply, with what the spend step reserved.
fn stored(
    plan: &SendPlan<'_>,
    spend: Option<SpendStep<'_>>,
    tokens: Tokens,
    replies: &StepReplies<'_>,
) -> Result<SendOutcome, StoreError> {
    let PutOutcome::Stored { attempts_remaining } = put_code(replies.put)? else {
        return Err(unexpected("stored", "a lock"));
    };
    let sent_at = &numbers_in(items(replies.sent_at)?)?;
    let spend = stored_spend(plan, spend, &tokens.logs, sent_at, replies.spend)?;
    let (prefix_token, monitored) = prefix_step(plan.prefix, replies.prefix, tokens.prefix)?;
    let next_allowed = numbers_in(items(replies.next_allowed)?)?;
    let phone_log = plan
        .logs
        .iter()
        .position(|(log, _)| matches!(log, SendLog::Phone(_)));
    let next_allowed_in = phone_log
        .and_then(|index| next_allowed.get(index))
        .map_or(Duration::ZERO, |ms| Duration::from_millis(*ms));
    let counted = plan
        .logs
        .iter()
        .zip(tokens.logs)
        .enumerate()
        .map(|(index, ((log, _), token))| {
            let token = match token {
                LogToken::Packed(nonce) => packed_token(number_at(sent_at, index)?, nonce),
                LogToken::Sorted(token) => token,
            };
            Ok((log.clone(), token))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(SendOutcome::Stored(StoredSend {
        attempts_remaining,
        counted,
        next_allowed_in,
        prefix_token,
        monitored,
        spend,
    }))
}

/// What a `stored` send reserved: at the first packed log's send time when
/// the driver handed the step that time (then it leaves the step's reply
/// out), else as the step's reply says.
fn stored_spend(
    plan: &SendPlan<'_>,
    spend: Option<SpendStep<'_>>,
    logs: &[LogToken],
    sent_at: &[u64],
    spend_reply: &[Value],
) -> Result<Option<SpendReservation>, StoreError> {
    match (spend, spend_reply) {
        (Some(step), []) => {
            let first_packed = logs
                .iter()
                .position(|token| matches!(token, LogToken::Packed(_)))
                .ok_or_else(|| unexpected("stored", "no spend reply and no send time"))?;
            let now_ms = number_at(sent_at, first_packed)?;
            Ok(Some(reservation_at(step.amount, step.windows, now_ms)))
        }
        (Some(_), [spend_reply]) => match spend_reply_of(spend, spend_reply)? {
            Some(SpendDecision::Reserved(reservation)) => Ok(Some(reservation)),
            _ => Err(unexpected("stored", "a spend refusal")),
        },
        // A plan whose step has no window reserves nothing anywhere, as
        // `reserve_spend` answers it.
        (None, []) => Ok(plan.spend.map(|step| SpendReservation {
            amount: step.amount,
            buckets: Vec::new(),
        })),
        _ => Err(unexpected("stored", "a spend reply that does not match")),
    }
}

/// The spend step's reply (empty when there was no step): its decision.
fn spend_reply_of(
    step: Option<SpendStep<'_>>,
    reply: &Value,
) -> Result<Option<SpendDecision>, StoreError> {
    let reply = items(reply)?;
    match (step, reply.is_empty()) {
        (None, true) => Ok(None),
        (Some(step), false) => spend_decision(reply, step.amount, step.windows).map(Some),
        _ => Err(unexpected("a spend step", "a reply that does not match it")),
    }
}

/// The prefix step's reply (empty when no prefix was judged): the token if
/// it counted the send, the suspension if it found one.
fn prefix_step(
    step: Option<PrefixStep<'_>>,
    reply: &Value,
    token: Option<String>,
) -> Result<(Option<String>, Option<PrefixSuspension>), StoreError> {
    let reply = items(reply)?;
    if step.is_none() || reply.is_empty() {
        return if step.is_none() && reply.is_empty() {
            Ok((None, None))
        } else {
            Err(unexpected(
                "a prefix step",
                "a reply that does not match it",
            ))
        };
    }
    match prefix_decision(reply, token.unwrap_or_default())? {
        PrefixDecision::Counted { token } => Ok((Some(token), None)),
        PrefixDecision::Suspended { lift_in, verdict } => {
            Ok((None, Some(PrefixSuspension { lift_in, verdict })))
        }
    }
}

/// `put_code.lua`'s reply, nested.
fn put_code(reply: &Value) -> Result<PutOutcome, StoreError> {
    let (status, numbers) = split_reply(items(reply)?)?;
    let value = numbers
        .first()
        .and_then(|value| i64::try_from(*value).ok())
        .ok_or_else(|| StoreError::Protocol(format!("put_code replied `{status}` {numbers:?}")))?;
    put_outcome(&status, value)
}

fn items(value: &Value) -> Result<&[Value], StoreError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(StoreError::Protocol(format!(
            "expected a nested reply, got {other:?}"
        ))),
    }
}

fn unexpected(status: &str, found: &str) -> StoreError {
    StoreError::Protocol(format!(
        "count_send_and_put_code replied `{status}` with {found}"
    ))
}
