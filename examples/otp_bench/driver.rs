//! The workers: C connections × K call slots, closed loop (each slot sends its
//! next call when the last one answers) or open loop (calls start on a fixed
//! schedule whatever the answers do, on whichever slot is free).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use otp_service::proto::{
    SendOtpRequest, TimeLeftRequest, VerifyOtpRequest, VerifyOtpResult,
    otp_service_client::OtpServiceClient,
};
use tokio::sync::mpsc;
use tonic::{Code, transport::Channel};

use crate::workload::{Call, Workload};

/// What a call came back with, when it came back OK.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Approved,
    Incorrect,
    Expired,
    Locked,
    Sent,
    Pending,
    NotPending,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Approved,
        Outcome::Incorrect,
        Outcome::Expired,
        Outcome::Locked,
        Outcome::Sent,
        Outcome::Pending,
        Outcome::NotPending,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Approved => "verify APPROVED",
            Outcome::Incorrect => "verify INCORRECT",
            Outcome::Expired => "verify EXPIRED",
            Outcome::Locked => "verify LOCKED",
            Outcome::Sent => "send OK",
            Outcome::Pending => "time-left pending",
            Outcome::NotPending => "time-left none",
        }
    }
}

/// Number of gRPC status codes (0 OK … 16 UNAUTHENTICATED).
pub const STATUS_CODES: usize = 17;

/// What one worker saw inside the measured window.
pub struct Tally {
    /// Call latency in nanoseconds.
    pub latency: Histogram<u64>,
    /// Open loop only: how late each call started against its schedule, in ns.
    pub lag: Histogram<u64>,
    pub outcomes: [u64; Outcome::ALL.len()],
    pub errors: [u64; STATUS_CODES],
}

impl Tally {
    pub fn new() -> Self {
        Self {
            latency: nanos_histogram(),
            lag: nanos_histogram(),
            outcomes: [0; Outcome::ALL.len()],
            errors: [0; STATUS_CODES],
        }
    }

    pub fn calls(&self) -> u64 {
        self.outcomes.iter().sum::<u64>() + self.errors.iter().sum::<u64>()
    }

    pub fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.lag.add(&other.lag);
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
    }
}

fn nanos_histogram() -> Histogram<u64> {
    // 1 ns to 60 s at 3 significant digits; the bounds are valid constants.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// When the run starts measuring and stops.
#[derive(Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub end: Instant,
}

/// Shared stop condition for `--requests`.
pub struct Budget {
    pub limit: Option<u64>,
    pub measured: AtomicU64,
    pub done: AtomicBool,
}

/// Open loop: start times, handed to whichever slot is free first.
pub type Schedule = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Instant>>>;

/// Shortest sleep of the pacer: starts due within one tick are released
/// together, so waking the runtime costs the generator little CPU.
const PACER_TICK: Duration = Duration::from_micros(200);

/// Paces an open loop from a plain thread, releasing starts every
/// [`PACER_TICK`] (Tokio's timer would release them in 1 ms bursts). Stops at
/// the end of the window, which ends the slots' loops.
pub fn pace(rate: f64, start: Instant, end: Instant) -> Schedule {
    let (starts, schedule) = mpsc::unbounded_channel();
    let period = Duration::from_secs_f64(1.0 / rate);
    std::thread::spawn(move || {
        outrank_runtime_workers();
        let mut next = start;
        while next < end {
            let now = Instant::now();
            while next <= now && next < end {
                if starts.send(next).is_err() {
                    return;
                }
                next += period;
            }
            std::thread::sleep(next.saturating_duration_since(now).max(PACER_TICK));
        }
    });
    Arc::new(tokio::sync::Mutex::new(schedule))
}

/// Under a real-time policy (`bench.sh` with `BENCH_SCHED=rt`) the runtime's
/// worker shares the CPU with the pacer at equal priority, and a busy worker
/// would hold it for a whole round-robin slice (100 ms) while starts pile up.
/// One step higher, the pacer preempts it the moment a tick is due. Under
/// ordinary scheduling this does nothing.
fn outrank_runtime_workers() {
    // SAFETY: these calls only read and set the calling thread's own
    // scheduling parameters, through a valid, initialised `sched_param`.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        if policy != libc::SCHED_RR && policy != libc::SCHED_FIFO {
            return;
        }
        let mut param = libc::sched_param { sched_priority: 0 };
        if libc::sched_getparam(0, &mut param) == 0 {
            param.sched_priority += 1;
            libc::sched_setscheduler(0, policy, &param);
        }
    }
}

/// One call slot: closed loop, or open loop when given a `schedule`.
pub async fn run_slot(
    mut client: OtpServiceClient<Channel>,
    workload: Arc<Workload>,
    window: Window,
    budget: Arc<Budget>,
    schedule: Option<Schedule>,
) -> Tally {
    let mut tally = Tally::new();
    loop {
        let mut intended = None;
        if let Some(schedule) = &schedule {
            let Some(start) = schedule.lock().await.recv().await else {
                break;
            };
            intended = Some(start);
        }
        if budget.done.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let result = call(&mut client, &workload, workload.next_call()).await;
        let finished = Instant::now();
        if finished < window.measure_from || finished >= window.end {
            continue;
        }
        if let Some(limit) = budget.limit {
            let measured = budget.measured.fetch_add(1, Ordering::Relaxed) + 1;
            if measured >= limit {
                budget.done.store(true, Ordering::Relaxed);
            }
            if measured > limit {
                break;
            }
        }
        tally
            .latency
            .saturating_record(nanos(finished.duration_since(started)));
        if let Some(intended) = intended {
            tally
                .lag
                .saturating_record(nanos(started.saturating_duration_since(intended)).max(1));
        }
        match result {
            Ok(outcome) => tally.outcomes[outcome as usize] += 1,
            Err(code) => tally.errors[code as usize] += 1,
        }
    }
    tally
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Makes one call and classifies the answer.
pub async fn call(
    client: &mut OtpServiceClient<Channel>,
    workload: &Workload,
    call: Call,
) -> Result<Outcome, Code> {
    match call {
        Call::Verify { phone, code } => {
            let response = client
                .verify_otp(VerifyOtpRequest {
                    phone_number: workload.phone(phone).to_owned(),
                    code,
                    ..Default::default()
                })
                .await
                .map_err(|status| status.code())?
                .into_inner();
            Ok(match response.result() {
                VerifyOtpResult::Approved => Outcome::Approved,
                VerifyOtpResult::Incorrect => Outcome::Incorrect,
                VerifyOtpResult::Expired => Outcome::Expired,
                VerifyOtpResult::Locked => Outcome::Locked,
                // The API promises never to send it: count it as a failure.
                VerifyOtpResult::Unspecified => return Err(Code::Unknown),
            })
        }
        Call::Send { phone } => {
            client
                .send_otp(SendOtpRequest {
                    phone_number: workload.phone(phone).to_owned(),
                    ..Default::default()
                })
                .await
                .map_err(|status| status.code())?;
            Ok(Outcome::Sent)
        }
        Call::TimeLeft { phone } => {
            let response = client
                .time_left(TimeLeftRequest {
                    phone_number: workload.phone(phone).to_owned(),
                })
                .await
                .map_err(|status| status.code())?
                .into_inner();
            Ok(if response.pending {
                Outcome::Pending
            } else {
                Outcome::NotPending
            })
        }
    }
}
