//! One SendOtp's store work as a single request: count the send in each
//! log, let the pumping guard judge its destination prefix, store the code,
//! reserve its price against the spend caps. [`count_in_steps`] is the one
//! definition of the order and of what is taken back when a step refuses; a
//! store that can do it all in one atomic call (Redis on one server or
//! behind Sentinel, `lua/count_send_and_put_code.lua`) must answer exactly
//! as it would.

use std::{ops::ControlFlow, time::Duration};

use futures_util::future::join_all;

use super::{
    OtpStore, PrefixDecision, PrefixSender, PrefixVerdict, PutOutcome, SendDecision, SendLog,
    SpendDecision, SpendRefusal, SpendReservation, SpendWindow, StoreError, Violation,
};
use crate::{
    abuse::{DestinationPrefix, PrefixRule, RateRule},
    domain::{CodeDigest, SubjectKey},
    metrics::{self, timed_store},
    spend::Micros,
};

/// What one send asks of the store, in the order it is done.
#[derive(Debug, Clone, Copy)]
pub struct SendPlan<'a> {
    /// The logs the send is counted in, with their rules, phone's first;
    /// the first that refuses decides (unless the number's lock outlasts
    /// it: see [`refusal_of`]), and the earlier counts are taken back.
    pub logs: &'a [(SendLog, Vec<RateRule>)],
    /// The pumping guard's decision, judged once every log admitted the
    /// send; `None` when the guard is off or the number is a test number.
    pub prefix: Option<PrefixStep<'a>>,
    /// The code made pending once the send is counted everywhere.
    pub code: CodeToStore<'a>,
    /// The spend caps' reservation, made once the code is stored; `None`
    /// when no cap is in force or the send is not priced.
    pub spend: Option<SpendStep<'a>>,
}

/// The spend caps' part of a [`SendPlan`]: the arguments of
/// [`OtpStore::reserve_spend`]. Last, so a send a limit, the pumping guard
/// or a lock refuses never touches the spend ledgers.
#[derive(Debug, Clone, Copy)]
pub struct SpendStep<'a> {
    /// The send's estimated price, reserved in every window.
    pub amount: Micros,
    /// The windows of every cap in force for this send (at most one per
    /// [`SpendCap`](crate::spend::SpendCap)).
    pub windows: &'a [SpendWindow],
}

/// The pumping guard's part of a [`SendPlan`].
#[derive(Debug, Clone, Copy)]
pub struct PrefixStep<'a> {
    /// The destination prefix judged.
    pub prefix: &'a DestinationPrefix,
    /// The rule it is judged by.
    pub rule: &'a PrefixRule,
    /// Whether a suspended prefix refuses the send (`enforce`) or only is
    /// reported while the send goes on uncounted there (`monitor`).
    pub refuse_suspended: bool,
    /// The number and who asked for it (trust and sources).
    pub sender: PrefixSender<'a>,
}

/// The arguments of [`OtpStore::put_code`] within a [`SendPlan`].
#[derive(Debug, Clone, Copy)]
pub struct CodeToStore<'a> {
    /// Whose code it is.
    pub subject: &'a SubjectKey,
    /// The new code's digest.
    pub digest: &'a CodeDigest,
    /// How long the code lives (TTL and grace).
    pub lifetime: Duration,
    /// The guess budget.
    pub max_attempts: u32,
}

/// A suspended destination prefix, as the pumping guard's step found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixSuspension {
    /// Time until the suspension lifts.
    pub lift_in: Duration,
    /// Set when this very call suspended the prefix: what it judged by.
    pub verdict: Option<PrefixVerdict>,
}

/// What [`OtpStore::count_send_and_put_code`] did. Unless `Stored`, nothing
/// stays counted anywhere and this send's code is not pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The first log that refused; no log counts the send. The number is
    /// not locked, or its lock ends before the longest of these delays.
    Refused {
        /// Every rule of that log that refused, with its own delay.
        violations: Vec<Violation>,
    },
    /// The prefix is suspended and the step refuses suspended prefixes.
    Suspended(PrefixSuspension),
    /// The subject's guess budget is spent (see [`PutOutcome::Locked`]):
    /// found by the code's step, or, when a log refused, because the lock
    /// lasts longer than every delay of that refusal ([`refusal_of`]).
    Locked {
        /// Time until a new code may be stored.
        retry_after: Duration,
        /// The prefix was found suspended on the way (`monitor` mode).
        monitored: Option<PrefixSuspension>,
    },
    /// A spend cap refused the send's price: the code, stored by then, was
    /// discarded (as [`OtpStore::discard_code`] does: a code it replaced
    /// is gone too) and every count taken back.
    SpendRefused {
        /// Every cap that refused, with when the price would fit.
        refusals: Vec<SpendRefusal>,
        /// The prefix was found suspended on the way (`monitor` mode).
        monitored: Option<PrefixSuspension>,
    },
    /// Counted everywhere and the code is pending.
    Stored(StoredSend),
}

/// A counted send whose code is now pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSend {
    /// Wrong guesses still allowed on the new code.
    pub attempts_remaining: u32,
    /// Each log of the plan with its token for [`OtpStore::refund_send`].
    pub counted: Vec<(SendLog, String)>,
    /// Time until the phone's own log admits another send (zero without one).
    pub next_allowed_in: Duration,
    /// The token for [`OtpStore::refund_prefix_send`] when the prefix counted it.
    pub prefix_token: Option<String>,
    /// The prefix was found suspended on the way (`monitor` mode): not counted.
    pub monitored: Option<PrefixSuspension>,
    /// What the spend step reserved, for [`OtpStore::refund_spend`]; `None`
    /// without a spend step.
    pub spend: Option<SpendReservation>,
}

/// Counts so far, taken back if a later step refuses or fails.
#[derive(Default)]
struct Counted {
    logs: Vec<(SendLog, String)>,
    next_allowed_in: Duration,
    prefix_token: Option<String>,
    /// The code was stored: discarded again if the spend step refuses or fails.
    code_stored: bool,
}

/// The plan run as one store call per step, each timed under its own
/// operation name: the default of [`OtpStore::count_send_and_put_code`], for
/// stores whose steps cannot share one atomic call (the in-memory store's
/// locks are per key; a Redis Cluster spreads the keys over slots). A
/// refusal or a store error takes back every count made so far, and the
/// code if it was stored.
pub async fn count_in_steps<S: OtpStore + ?Sized>(
    store: &S,
    plan: SendPlan<'_>,
) -> Result<SendOutcome, StoreError> {
    let mut counted = Counted::default();
    let outcome = run_steps(store, &plan, &mut counted).await;
    if !matches!(outcome, Ok(SendOutcome::Stored(_))) {
        let prefix_send = plan
            .prefix
            .zip(counted.prefix_token.as_deref())
            .map(|(step, token)| (step.prefix, token));
        let code = async {
            if counted.code_stored {
                discard_unsent_code(store, &plan.code).await;
            }
        };
        // At once, as in `take_back_sends`: a hung store costs one timeout.
        tokio::join!(take_back_sends(store, &counted.logs, prefix_send), code);
    }
    outcome
}

/// The steps in order; stops at the first that refuses or fails. Counts
/// stay in `counted` for the caller to take back, unless the code is stored.
async fn run_steps<S: OtpStore + ?Sized>(
    store: &S,
    plan: &SendPlan<'_>,
    counted: &mut Counted,
) -> Result<SendOutcome, StoreError> {
    let sent_at_ms = match count_in_logs(store, plan, counted).await? {
        ControlFlow::Continue(sent_at_ms) => sent_at_ms,
        ControlFlow::Break(refused) => return Ok(refused),
    };
    let monitored = match count_in_prefix(store, plan, sent_at_ms, counted).await? {
        ControlFlow::Continue(monitored) => monitored,
        ControlFlow::Break(suspended) => return Ok(suspended),
    };
    let code = plan.code;
    let put = store.put_code(code.subject, code.digest, code.lifetime, code.max_attempts);
    let attempts_remaining = match timed_store("put_code", put).await? {
        PutOutcome::Stored { attempts_remaining } => attempts_remaining,
        PutOutcome::Locked { retry_after } => {
            return Ok(SendOutcome::Locked {
                retry_after,
                monitored,
            });
        }
    };
    counted.code_stored = true;
    let spend = match plan.spend {
        Some(step) => {
            let reserve = store.reserve_spend(step.amount, step.windows);
            match timed_store("reserve_spend", reserve).await? {
                SpendDecision::Reserved(reservation) => Some(reservation),
                SpendDecision::Refused { refusals } => {
                    return Ok(SendOutcome::SpendRefused {
                        refusals,
                        monitored,
                    });
                }
            }
        }
        None => None,
    };
    Ok(SendOutcome::Stored(StoredSend {
        attempts_remaining,
        counted: std::mem::take(&mut counted.logs),
        next_allowed_in: counted.next_allowed_in,
        prefix_token: counted.prefix_token.take(),
        monitored,
        spend,
    }))
}

/// The pumping guard's step, if the plan has one: counts the send under its
/// prefix at `sent_at_ms`, or stops at a suspension it enforces; continues
/// with a suspension it only monitors.
async fn count_in_prefix<S: OtpStore + ?Sized>(
    store: &S,
    plan: &SendPlan<'_>,
    sent_at_ms: Option<u64>,
    counted: &mut Counted,
) -> Result<ControlFlow<SendOutcome, Option<PrefixSuspension>>, StoreError> {
    let Some(step) = plan.prefix else {
        return Ok(ControlFlow::Continue(None));
    };
    // Counted at the time the number's record logged, so the approval of
    // this send's code finds it by the time the record kept.
    let sender = PrefixSender {
        sent_at_ms,
        ..step.sender
    };
    let decision = timed_store(
        "count_prefix_send",
        store.count_prefix_send(step.prefix, step.rule, sender),
    )
    .await?;
    Ok(match decision {
        PrefixDecision::Counted { token } => {
            counted.prefix_token = Some(token);
            ControlFlow::Continue(None)
        }
        PrefixDecision::Suspended { lift_in, verdict } => {
            let suspension = PrefixSuspension { lift_in, verdict };
            if step.refuse_suspended {
                ControlFlow::Break(SendOutcome::Suspended(suspension))
            } else {
                ControlFlow::Continue(Some(suspension))
            }
        }
    })
}

/// Counts the send in each of `plan`'s logs in turn, until one refuses
/// (the refusal, or the number's lock if it outlasts it: [`refusal_of`]).
/// Continues with when the number's record logged it.
async fn count_in_logs<S: OtpStore + ?Sized>(
    store: &S,
    plan: &SendPlan<'_>,
    counted: &mut Counted,
) -> Result<ControlFlow<SendOutcome, Option<u64>>, StoreError> {
    let mut sent_at_ms = None;
    for (log, rules) in plan.logs {
        match timed_store("record_send", store.record_send(log, rules)).await? {
            SendDecision::Admitted {
                token,
                next_allowed_in,
                sent_at_ms: logged_at,
            } => {
                if matches!(log, SendLog::Phone(_)) {
                    counted.next_allowed_in = next_allowed_in;
                    sent_at_ms = logged_at;
                }
                counted.logs.push((log.clone(), token));
            }
            SendDecision::Refused { violations } => {
                let code = &plan.code;
                let lock = store.lock_remaining(code.subject, code.max_attempts);
                // The refusal stands without the lock: a failed read must not
                // turn it into UNAVAILABLE (which says "retry now") nor skip
                // taking back what was counted.
                let lock = timed_store("lock_remaining", lock)
                    .await
                    .unwrap_or_else(|err| {
                        tracing::warn!(error = %err, "could not read the number's lock for a refused send");
                        None
                    });
                return Ok(ControlFlow::Break(refusal_of(violations, lock)));
            }
        }
    }
    Ok(ControlFlow::Continue(sent_at_ms))
}

/// A log's refusal of a send to a number that may be locked (`lock`: time
/// until the lock ends): the lock is the refusal when it outlasts every
/// delay of the log's, else the log's is, whose longest delay then covers
/// the lock too. Either way the delay answered is one after which neither
/// stands in the way, so a client waiting it out is not sent back by the
/// other (a cooldown of 30 s refusing a number locked for 2 min).
pub(super) fn refusal_of(violations: Vec<Violation>, lock: Option<Duration>) -> SendOutcome {
    let longest = violations
        .iter()
        .map(|violation| violation.retry_after)
        .max();
    match lock {
        Some(retry_after) if longest.is_none_or(|longest| retry_after > longest) => {
            SendOutcome::Locked {
                retry_after,
                monitored: None,
            }
        }
        _ => SendOutcome::Refused { violations },
    }
}

/// Removes `code` again (unless a newer send replaced it): a later step
/// refused the send or failed. A failure is logged, not returned: the code
/// expires by itself and nobody received it.
async fn discard_unsent_code<S: OtpStore + ?Sized>(store: &S, code: &CodeToStore<'_>) {
    if let Err(err) = store.discard_code(code.subject, code.digest).await {
        tracing::error!(error = %err, "could not discard the code of a refused send");
    }
}

/// Takes back the sends counted in `logs` and, if given, the pumping guard's
/// count of the send, all at once: each is its own store call, and on a hung
/// store one after another would cost one store timeout each (a SendOtp cut
/// mid-way by a frozen Redis answered only after 5 s). Failures are logged,
/// never returned: over-counting errs on the safe side.
pub async fn take_back_sends<S: OtpStore + ?Sized>(
    store: &S,
    logs: &[(SendLog, String)],
    prefix_send: Option<(&DestinationPrefix, &str)>,
) {
    let logs = join_all(logs.iter().map(|(log, token)| async move {
        if let Err(err) = store.refund_send(log, token).await {
            // The limit just bites sooner.
            tracing::warn!(error = %err, "could not take back a counted send");
        }
    }));
    let prefix_send = async {
        if let Some((prefix, token)) = prefix_send {
            take_back_prefix_send(store, prefix, token).await;
        }
    };
    tokio::join!(prefix_send, logs);
}

/// Takes back the pumping guard's count of one send to `prefix`. A failure
/// is logged and counted, never returned.
pub async fn take_back_prefix_send<S: OtpStore + ?Sized>(
    store: &S,
    prefix: &DestinationPrefix,
    token: &str,
) {
    if let Err(err) = store.refund_prefix_send(prefix, token).await {
        // Over-counting errs towards a suspension, which real users'
        // approvals outweigh; the call itself is not failed for it.
        // No prefix here: this line is in the call's span (masked number).
        tracing::warn!(error = %err, "could not take back a send counted by the pumping guard");
        metrics::pumping_guard_failed("refund_prefix_send");
    }
}
