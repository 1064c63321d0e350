//! Bytes the in-memory store holds per number texted (issue 30), counted
//! exactly: every allocation goes through a counting global allocator, and
//! the figure is the bytes still allocated after N numbers were each texted
//! SENDS times with their own `client_key` (the load of `scripts/bytes.sh`,
//! the same logs and rules, straight on the store) minus before, divided by
//! N. Unlike the script's RssAnon, it has no allocator slack or page noise,
//! but also does not see what the allocator rounds a request up to.
//!
//! It prints the figure twice: with the pumping guard counting every send
//! (as deployed) and with the guard off, so the guard's share is the
//! difference.
//!
//! `cargo run --release --example memory_bytes [numbers] [sends]`

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use otp_service::{
    abuse::{GuardMode, LimitKind, PumpingGuardSettings, RateRule, SendSource},
    domain::{CodeDigest, HmacSecret, PhoneNumber},
    store::{
        CodeToStore, DEFAULT_MAX_ENTRIES, MemoryStore, OtpStore, PrefixSender, PrefixStep, SendLog,
        SendPlan,
    },
};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is
// updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The limits of `scripts/bytes.sh`: raised so no send is refused, each
/// still counted (cooldown off, 5 per 10 minutes and 10 a day per number,
/// 20 per 10 minutes per client, no global cap).
fn phone_rules(sends: u32) -> Vec<RateRule> {
    vec![
        RateRule {
            kind: LimitKind::PhoneWindow,
            limit: sends.max(5),
            period: Duration::from_secs(600),
        },
        RateRule {
            kind: LimitKind::PhoneDaily,
            limit: sends.max(10),
            period: Duration::from_secs(24 * 60 * 60),
        },
    ]
}

fn client_rules() -> Vec<RateRule> {
    vec![RateRule {
        kind: LimitKind::ClientWindow,
        limit: 20,
        period: Duration::from_secs(600),
    }]
}

/// The guard's defaults, with a verdict needing a million judged sends.
fn guard() -> PumpingGuardSettings {
    PumpingGuardSettings {
        mode: GuardMode::Enforce,
        prefix_digits: 4,
        window: Duration::from_secs(3600),
        min_sends: 1_000_000,
        min_approved_percent: 20,
        suspension: Duration::from_secs(3600),
        min_sources: 3,
        trust_for: Duration::from_secs(30 * 24 * 60 * 60),
    }
}

/// Texts numbers `first..first + numbers` `sends` times each; panics on any refusal.
async fn text(store: &MemoryStore, first: u32, numbers: u32, sends: u32, with_guard: bool) {
    let secret = HmacSecret::new(b"memory-bytes-memory-bytes-memory-bytes");
    let settings = guard();
    let rule = settings.rule(Duration::from_secs(130));
    let digest = CodeDigest::from_bytes([7; 32]);
    let (phone_rules, client_rules) = (phone_rules(sends), client_rules());
    for _ in 0..sends {
        for i in first..first + numbers {
            let phone = PhoneNumber::parse(&format!("+4474{:08}", (i * 37) % 100_000_000))
                .expect("a valid UK mobile number");
            let subject = secret.subject_key(&phone);
            let client = secret.subject_key(
                &PhoneNumber::parse(&format!("+1415{:07}", i % 10_000_000)).expect("valid"),
            );
            let prefix = settings.prefix_of(&phone);
            let logs = [
                (SendLog::Phone(subject), phone_rules.clone()),
                (SendLog::Client(client), client_rules.clone()),
            ];
            let plan = SendPlan {
                logs: &logs,
                prefix: with_guard.then_some(PrefixStep {
                    prefix: &prefix,
                    rule: &rule,
                    refuse_suspended: true,
                    sender: PrefixSender {
                        subject: &subject,
                        source: SendSource(client.tag()),
                        sent_at_ms: None,
                    },
                }),
                code: CodeToStore {
                    subject: &subject,
                    digest: &digest,
                    lifetime: Duration::from_secs(130),
                    max_attempts: 5,
                },
                // No prices file in this load (bytes.sh runs none).
                spend: None,
            };
            let outcome = store
                .count_send_and_put_code(plan)
                .await
                .expect("the store answers");
            assert!(
                matches!(outcome, otp_service::store::SendOutcome::Stored(_)),
                "a send of the load was refused: {outcome:?}"
            );
        }
    }
}

/// Bytes held per number after the load, on a fresh store.
async fn bytes_per_number(numbers: u32, sends: u32, with_guard: bool) -> f64 {
    // The service's cap (and so its shards), unless the load needs more.
    let cap = DEFAULT_MAX_ENTRIES.max(usize::try_from(numbers).unwrap_or(usize::MAX) * 2);
    let store = MemoryStore::with_sweep_interval(cap, Duration::from_secs(3600));
    text(&store, 10_000_000, 500, sends, with_guard).await;
    let before = LIVE.load(Ordering::Relaxed);
    text(&store, 0, numbers, sends, with_guard).await;
    let after = LIVE.load(Ordering::Relaxed);
    after.saturating_sub(before) as f64 / f64::from(numbers)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let numbers: u32 = args
        .next()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(20_000);
    let sends: u32 = args.next().and_then(|raw| raw.parse().ok()).unwrap_or(1);
    let with_guard = bytes_per_number(numbers, sends, true).await;
    let without = bytes_per_number(numbers, sends, false).await;
    println!(
        "memory store, {numbers} numbers, {sends} sends each: {with_guard:.0} B per number \
         allocated (guard {:.0} B, the rest {without:.0} B)",
        with_guard - without
    );
}
