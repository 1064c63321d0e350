//! How long the in-memory store's sweeper can hold up a request, with a
//! million expired entries to forget: prints the longest time one lock was
//! held and the slowest store call made while the sweep ran, next to what a
//! single unsharded `HashMap::retain` over the same number of entries takes.
//!
//! `cargo run --release --example memory_sweep_stall [entries]`

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use otp_service::{
    domain::{CodeDigest, HmacSecret, PhoneNumber},
    store::{MemoryStore, OtpStore},
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let entries: u32 = std::env::args()
        .nth(1)
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(1_000_000);
    let secret = HmacSecret::new(b"memory-sweep-stall");
    let phone = |n: u32| PhoneNumber::parse(&format!("+1415{:07}", 2_000_000 + n));
    // Room for every entry, and no background sweep while filling: the
    // sweep measured is the one below.
    let store = MemoryStore::with_sweep_interval(
        usize::try_from(entries).unwrap_or(usize::MAX) * 2,
        Duration::from_secs(3600),
    );
    let digest = CodeDigest::from_bytes([7; 32]);
    let started = Instant::now();
    let mut subjects = Vec::with_capacity(entries as usize);
    for n in 0..entries {
        let Ok(phone) = phone(n) else { continue };
        subjects.push(secret.subject_key(&phone));
    }
    for subject in &subjects {
        let _ = store
            .put_code(subject, &digest, Duration::from_millis(1), 5)
            .await;
    }
    println!("filled {} entries in {:?}", store.len(), started.elapsed());
    tokio::time::sleep(Duration::from_millis(50)).await;

    // A caller hammering the store while the sweep runs: its slowest call
    // is the stall a real request could see.
    let live = secret.subject_key(&phone(entries + 1).expect("valid phone"));
    let _ = store
        .put_code(&live, &digest, Duration::from_secs(600), 5)
        .await;
    let sweeping = Arc::new(AtomicBool::new(true));
    let prober = tokio::spawn({
        let (store, sweeping) = (store.clone(), Arc::clone(&sweeping));
        async move {
            let mut slowest = Duration::ZERO;
            while sweeping.load(Ordering::Relaxed) {
                let call = Instant::now();
                let _ = store.pending_lifetime(&live).await;
                slowest = slowest.max(call.elapsed());
                tokio::task::yield_now().await;
            }
            slowest
        }
    });
    let sweep_started = Instant::now();
    let report = store.sweep_now().await;
    let sweep_took = sweep_started.elapsed();
    sweeping.store(false, Ordering::Relaxed);
    let slowest_call = prober.await.expect("prober");
    println!(
        "sweep: removed {} in {:?}; longest lock hold {:?}; slowest concurrent call {:?}",
        report.removed, sweep_took, report.longest_hold, slowest_call
    );

    // Baseline: one map, one lock, one retain over everything.
    let mut single: HashMap<_, Instant> =
        subjects.into_iter().map(|s| (s, Instant::now())).collect();
    let cutoff = Instant::now();
    let baseline = Instant::now();
    single.retain(|_, at| *at > cutoff);
    println!(
        "baseline: one unsharded retain over {entries} entries holds its lock {:?}",
        baseline.elapsed()
    );
}
