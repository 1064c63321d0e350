//! A SendOtp's whole store work in one call: the send logs in order, the
//! pumping guard's step, the code, the spend caps' reservation — and what
//! each refusal takes back (`count_send_and_put_code.lua` on one server or
//! Sentinel, and `store::count_in_steps` on the in-memory store and a
//! Cluster).

use std::time::Duration;

use otp_service::{
    abuse::{DestinationPrefix, LimitKind, PrefixRule, RateRule, SendSource},
    domain::SubjectKey,
    spend::{Micros, SpendCap},
    store::{
        CodeToStore, PrefixDecision, PrefixSender, PrefixStep, PrefixVerdict, PutOutcome,
        SendDecision, SendLog, SendOutcome, SendPlan, SpendLedger, SpendStep, SpendWindow,
        StoredSend, VerifyOutcome,
    },
};

use super::{LIFETIME, MAX_ATTEMPTS, digest, new_subject, pending, prefix};
use crate::common::{StoreKind, TestStore, unique_prefix};

/// Every send is judged at once; one judged send without an approval
/// suspends the prefix: a prefix whose count stayed suspends on the next.
const RULE: PrefixRule = PrefixRule {
    window: Duration::from_secs(60),
    judge_after: Duration::ZERO,
    min_sends: 1,
    min_approved_percent: 50,
    suspension: Duration::from_secs(60),
    min_sources: 1,
    trust_for: Duration::ZERO,
};

const PERIOD: Duration = Duration::from_secs(600);

/// At most `limit` sends per [`PERIOD`], named `kind`.
fn rules(kind: LimitKind, limit: u32) -> Vec<RateRule> {
    vec![RateRule {
        kind,
        limit,
        period: PERIOD,
    }]
}

/// A phone's log allowing one send, then the global log's `global` sends.
fn phone_and_global(subject: &SubjectKey, global: u32) -> Vec<(SendLog, Vec<RateRule>)> {
    vec![
        (SendLog::Phone(*subject), rules(LimitKind::PhoneWindow, 1)),
        (SendLog::Global, rules(LimitKind::Global, global)),
    ]
}

fn step<'a>(
    prefix: &'a DestinationPrefix,
    subject: &'a SubjectKey,
    refuse_suspended: bool,
) -> PrefixStep<'a> {
    PrefixStep {
        prefix,
        rule: &RULE,
        refuse_suspended,
        sender: PrefixSender {
            subject,
            source: SendSource::ANONYMOUS,
            sent_at_ms: None,
        },
    }
}

async fn send(
    store: &TestStore,
    subject: &SubjectKey,
    logs: &[(SendLog, Vec<RateRule>)],
    prefix: Option<PrefixStep<'_>>,
) -> SendOutcome {
    send_priced(store, subject, logs, prefix, None).await
}

/// [`send`] with a spend step.
async fn send_priced(
    store: &TestStore,
    subject: &SubjectKey,
    logs: &[(SendLog, Vec<RateRule>)],
    prefix: Option<PrefixStep<'_>>,
    spend: Option<SpendStep<'_>>,
) -> SendOutcome {
    let digest = digest(1);
    let plan = SendPlan {
        logs,
        prefix,
        code: CodeToStore {
            subject,
            digest: &digest,
            lifetime: LIFETIME,
            max_attempts: MAX_ATTEMPTS,
        },
        spend,
    };
    store
        .count_send_and_put_code(plan)
        .await
        .expect("count_send_and_put_code answers")
}

fn stored(outcome: SendOutcome) -> StoredSend {
    match outcome {
        SendOutcome::Stored(stored) => stored,
        other => panic!("expected the code stored, got {other:?}"),
    }
}

/// Whether `log` has room for one more send under `rules` (counting it).
async fn has_room(store: &TestStore, log: &SendLog, rules: &[RateRule]) -> bool {
    let decision = store.record_send(log, rules).await.expect("record_send");
    matches!(decision, SendDecision::Admitted { .. })
}

/// Whether `prefix` has a send counted (under [`RULE`] it then suspends).
async fn prefix_counted(store: &TestStore, prefix: &DestinationPrefix) -> bool {
    let subject = new_subject();
    let sender = PrefixSender {
        subject: &subject,
        source: SendSource::ANONYMOUS,
        sent_at_ms: None,
    };
    let decision = store
        .count_prefix_send(prefix, &RULE, sender)
        .await
        .expect("count_prefix_send");
    matches!(decision, PrefixDecision::Suspended { .. })
}

async fn stored_send_returns_tokens_the_refunds_accept(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    let logs = phone_and_global(&subject, 1);
    let pumped = prefix("+1 628 200 0001");
    let sent = stored(send(&store, &subject, &logs, Some(step(&pumped, &subject, true))).await);
    assert_eq!(sent.attempts_remaining, MAX_ATTEMPTS);
    assert_eq!(sent.next_allowed_in, PERIOD, "the phone's log is full");
    assert_eq!(sent.monitored, None);
    let counted: Vec<&SendLog> = sent.counted.iter().map(|(log, _)| log).collect();
    assert_eq!(counted, vec![&logs[0].0, &logs[1].0], "in the plan's order");
    assert!(pending(&store, &subject).await.is_some());

    for (log, token) in &sent.counted {
        store.refund_send(log, token).await.expect("refund_send");
    }
    let prefix_token = sent.prefix_token.expect("the prefix counted the send");
    store
        .refund_prefix_send(&pumped, &prefix_token)
        .await
        .expect("refund_prefix_send");
    for (log, rules) in &logs {
        assert!(has_room(&store, log, rules).await, "{log:?} refunded");
    }
    assert!(!prefix_counted(&store, &pumped).await, "prefix refunded");
}

async fn first_refusing_log_decides_and_the_earlier_counts_are_taken_back(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    let logs = vec![
        (SendLog::Phone(subject), rules(LimitKind::PhoneWindow, 1)),
        (
            SendLog::Client(new_subject()),
            rules(LimitKind::ClientWindow, 0),
        ),
        (SendLog::Global, rules(LimitKind::Global, 0)),
    ];
    let pumped = prefix("+1 628 200 0002");
    let outcome = send(&store, &subject, &logs, Some(step(&pumped, &subject, true))).await;
    let SendOutcome::Refused { violations } = outcome else {
        panic!("the client's log is full, got {outcome:?}");
    };
    let kinds: Vec<LimitKind> = violations.iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        vec![LimitKind::ClientWindow],
        "only the first refusal"
    );
    assert_eq!(violations[0].retry_after, PERIOD);
    assert!(
        has_room(&store, &logs[0].0, &logs[0].1).await,
        "phone's taken back"
    );
    assert!(
        !prefix_counted(&store, &pumped).await,
        "prefix never judged"
    );
    assert_eq!(pending(&store, &subject).await, None);

    // The phone's own log refusing first: nothing after it is counted.
    let outcome = send(&store, &subject, &phone_and_global(&subject, 1), None).await;
    assert!(
        matches!(outcome, SendOutcome::Refused { .. }),
        "{outcome:?}"
    );
    assert!(has_room(&store, &SendLog::Global, &rules(LimitKind::Global, 1)).await);
}

async fn suspension_refuses_in_enforce_and_is_reported_in_monitor(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let pumped = prefix("+1 628 200 0003");
    assert!(
        !prefix_counted(&store, &pumped).await,
        "one unapproved send"
    );

    let subject = new_subject();
    let logs = phone_and_global(&subject, 1);
    let outcome = send(&store, &subject, &logs, Some(step(&pumped, &subject, true))).await;
    let SendOutcome::Suspended(suspension) = outcome else {
        panic!("an unapproved judged send suspends, got {outcome:?}");
    };
    assert_eq!(suspension.lift_in, RULE.suspension);
    let verdict = PrefixVerdict {
        judged: 1,
        approved: 0,
    };
    assert_eq!(suspension.verdict, Some(verdict), "this call suspended it");
    for (log, rules) in &logs {
        assert!(has_room(&store, log, rules).await, "{log:?} taken back");
    }
    assert_eq!(pending(&store, &subject).await, None);

    // The global log has room left: the refund above left one send there.
    let subject = new_subject();
    let logs = phone_and_global(&subject, 10);
    let sent = stored(
        send(
            &store,
            &subject,
            &logs,
            Some(step(&pumped, &subject, false)),
        )
        .await,
    );
    let monitored = sent.monitored.expect("monitor reports the suspension");
    assert!(monitored.lift_in <= RULE.suspension && monitored.lift_in > Duration::ZERO);
    assert_eq!(monitored.verdict, None, "suspended by an earlier call");
    assert_eq!(sent.prefix_token, None, "a suspended prefix counts nothing");
    assert_eq!(sent.counted.len(), 2);
    assert!(pending(&store, &subject).await.is_some());
    assert!(!has_room(&store, &logs[0].0, &logs[0].1).await, "counted");
}

async fn lock_takes_back_every_count(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = locked_subject(&store).await;
    let logs = phone_and_global(&subject, 1);
    let pumped = prefix("+1 628 200 0004");
    let outcome = send(&store, &subject, &logs, Some(step(&pumped, &subject, true))).await;
    let SendOutcome::Locked {
        retry_after,
        monitored,
    } = outcome
    else {
        panic!("a locked subject gets no code, got {outcome:?}");
    };
    assert!(retry_after > Duration::ZERO && retry_after <= LIFETIME);
    assert_eq!(monitored, None);
    for (log, rules) in &logs {
        assert!(has_room(&store, log, rules).await, "{log:?} taken back");
    }
    assert!(!prefix_counted(&store, &pumped).await, "prefix taken back");
}

/// A subject whose guess budget is spent: locked for about [`LIFETIME`].
async fn locked_subject(store: &TestStore) -> SubjectKey {
    let subject = new_subject();
    let put = store.put_code(&subject, &digest(1), LIFETIME, 1).await;
    assert!(matches!(put, Ok(PutOutcome::Stored { .. })));
    let wrong = store.verify_and_consume(&subject, &[digest(2)], 1).await;
    assert!(matches!(
        wrong,
        Ok(VerifyOutcome::Incorrect {
            attempts_remaining: 0
        })
    ));
    subject
}

/// A resend cooldown shorter than the lock.
const COOLDOWN: Duration = Duration::from_secs(30);

/// A log refusing a locked number for less time than the lock lasts: the
/// lock is the refusal (a client waiting out the log's delay would be sent
/// back by the lock); a log refusing for longer than the lock stays the
/// refusal, its delay covering the lock. Nothing stays counted either way.
async fn a_lock_outlasting_the_refusing_log_is_the_refusal(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let cooldown = vec![RateRule {
        kind: LimitKind::PhoneCooldown,
        limit: 1,
        period: COOLDOWN,
    }];

    // The number's own cooldown refuses, its first log.
    let subject = locked_subject(&store).await;
    assert!(has_room(&store, &SendLog::Phone(subject), &cooldown).await);
    let logs = vec![
        (SendLog::Phone(subject), cooldown.clone()),
        (SendLog::Global, rules(LimitKind::Global, 1)),
    ];
    let outcome = send(&store, &subject, &logs, None).await;
    let SendOutcome::Locked {
        retry_after,
        monitored,
    } = outcome
    else {
        panic!("the lock outlasts the cooldown, got {outcome:?}");
    };
    assert!(
        retry_after > COOLDOWN && retry_after <= LIFETIME,
        "the lock's time: {retry_after:?}"
    );
    assert_eq!(monitored, None);
    assert!(
        has_room(&store, &logs[1].0, &logs[1].1).await,
        "not counted"
    );

    // A later log refuses: the number's count is taken back all the same.
    let subject = locked_subject(&store).await;
    let client_cooldown = vec![RateRule {
        kind: LimitKind::ClientWindow,
        limit: 0,
        period: COOLDOWN,
    }];
    let logs = vec![
        (SendLog::Phone(subject), rules(LimitKind::PhoneWindow, 1)),
        (SendLog::Client(new_subject()), client_cooldown),
    ];
    let outcome = send(&store, &subject, &logs, None).await;
    assert!(
        matches!(outcome, SendOutcome::Locked { retry_after, .. } if retry_after > COOLDOWN),
        "the lock outlasts the client's limit, got {outcome:?}"
    );
    assert!(
        has_room(&store, &logs[0].0, &logs[0].1).await,
        "phone's taken back"
    );

    // A limit outlasting the lock (a day's, here 10 min) stays the refusal.
    let subject = locked_subject(&store).await;
    let daily = rules(LimitKind::PhoneDaily, 1);
    assert!(has_room(&store, &SendLog::Phone(subject), &daily).await);
    let logs = vec![(SendLog::Phone(subject), daily)];
    let outcome = send(&store, &subject, &logs, None).await;
    let SendOutcome::Refused { violations } = outcome else {
        panic!("the daily limit outlasts the lock, got {outcome:?}");
    };
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].kind, LimitKind::PhoneDaily);
    assert!(violations[0].retry_after > LIFETIME, "{violations:?}");
    assert_eq!(pending(&store, &subject).await, None);
}

/// Spend windows on a caller ledger no other test uses: `limit` µ a day,
/// plus the service's hour without a practical limit (two windows, so the
/// step is handed more than one key).
fn spend_windows(limit: u64) -> Vec<SpendWindow> {
    let day = Duration::from_secs(86_400);
    vec![
        SpendWindow {
            cap: SpendCap::PerHour,
            ledger: SpendLedger::Service,
            period: Duration::from_secs(3_600),
            limit: Micros(1_000_000_000),
        },
        SpendWindow {
            cap: SpendCap::CallerPerDay,
            ledger: SpendLedger::Caller(unique_prefix()),
            period: day,
            limit: Micros(limit),
        },
    ]
}

fn spend(amount: u64, windows: &[SpendWindow]) -> Option<SpendStep<'_>> {
    Some(SpendStep {
        amount: Micros(amount),
        windows,
    })
}

async fn spend_step_reserves_once_the_send_is_counted_and_its_code_stored(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let windows = spend_windows(100);

    // A send a log refuses never reaches the spend step: the next one fits.
    let subject = new_subject();
    let full = vec![(SendLog::Phone(subject), rules(LimitKind::PhoneWindow, 0))];
    let outcome = send_priced(&store, &subject, &full, None, spend(60, &windows)).await;
    assert!(
        matches!(outcome, SendOutcome::Refused { .. }),
        "{outcome:?}"
    );

    let subject = new_subject();
    let logs = phone_and_global(&subject, 10);
    let sent = stored(send_priced(&store, &subject, &logs, None, spend(60, &windows)).await);
    let reservation = sent.spend.expect("the step reserved the price");
    assert_eq!(reservation.amount, Micros(60));
    assert_eq!(reservation.buckets.len(), 2, "one bucket per window");
    assert!(pending(&store, &subject).await.is_some());

    let other = new_subject();
    let logs = phone_and_global(&other, 10);
    let outcome = send_priced(&store, &other, &logs, None, spend(60, &windows)).await;
    let SendOutcome::SpendRefused { refusals, .. } = outcome else {
        panic!("120 would cross 100, got {outcome:?}");
    };
    let caps: Vec<SpendCap> = refusals.iter().map(|refusal| refusal.cap).collect();
    assert_eq!(caps, vec![SpendCap::CallerPerDay], "only the caller's cap");

    // The reservation is what `refund_spend` gives back.
    store
        .refund_spend(&reservation, Micros(60))
        .await
        .expect("refund_spend");
    let sent = stored(send_priced(&store, &other, &logs, None, spend(60, &windows)).await);
    assert!(sent.spend.is_some());
    assert_eq!(sent.counted.len(), 2);
}

/// A plan without a number's log (so no log read the store's clock before
/// the spend step: on one Redis server the step reads `TIME` and replies
/// it) reserves in buckets its refund reaches: after the refund the limit's
/// room is whole again.
async fn a_send_without_a_number_log_reserves_where_its_refund_reaches(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let windows = spend_windows(100);
    let global_only = vec![(SendLog::Global, rules(LimitKind::Global, 1_000))];
    let subject = new_subject();
    let sent = stored(send_priced(&store, &subject, &global_only, None, spend(60, &windows)).await);
    let reservation = sent.spend.expect("the step reserved the price");
    assert_eq!(reservation.buckets.len(), 2, "one bucket per window");
    store
        .refund_spend(&reservation, Micros(60))
        .await
        .expect("refund_spend");
    let other = new_subject();
    let outcome = send_priced(&store, &other, &global_only, None, spend(100, &windows)).await;
    assert!(
        matches!(outcome, SendOutcome::Stored(_)),
        "the refund gave all 60 back, so 100 fits: {outcome:?}"
    );
}

async fn spend_refusal_discards_the_code_and_takes_back_every_count(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let windows = spend_windows(50);
    let subject = new_subject();
    let logs = phone_and_global(&subject, 1);
    let pumped = prefix("+1 628 200 0005");
    let judged = Some(step(&pumped, &subject, true));
    let outcome = send_priced(&store, &subject, &logs, judged, spend(60, &windows)).await;
    let SendOutcome::SpendRefused {
        refusals,
        monitored,
    } = outcome
    else {
        panic!("60 never fits in 50, got {outcome:?}");
    };
    assert_eq!(monitored, None, "the prefix counted the send");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].retry_after > Duration::ZERO);
    assert_eq!(pending(&store, &subject).await, None, "no code left");
    for (log, rules) in &logs {
        assert!(has_room(&store, log, rules).await, "{log:?} taken back");
    }
    assert!(!prefix_counted(&store, &pumped).await, "prefix taken back");

    // The prefix now counts one unapproved send (`prefix_counted`), so the
    // next judged send suspends it; in `monitor` mode that is reported.
    let subject = new_subject();
    let logs = phone_and_global(&subject, 10);
    let monitor = Some(step(&pumped, &subject, false));
    let outcome = send_priced(&store, &subject, &logs, monitor, spend(60, &windows)).await;
    let SendOutcome::SpendRefused { monitored, .. } = outcome else {
        panic!("60 never fits in 50, got {outcome:?}");
    };
    assert!(monitored.is_some(), "the suspension is reported");
    assert_eq!(pending(&store, &subject).await, None);
}

for_each_store!(
    stored_send_returns_tokens_the_refunds_accept,
    first_refusing_log_decides_and_the_earlier_counts_are_taken_back,
    suspension_refuses_in_enforce_and_is_reported_in_monitor,
    lock_takes_back_every_count,
    a_lock_outlasting_the_refusing_log_is_the_refusal,
    spend_step_reserves_once_the_send_is_counted_and_its_code_stored,
    a_send_without_a_number_log_reserves_where_its_refund_reaches,
    spend_refusal_discards_the_code_and_takes_back_every_count,
);
