//! Failover checks shared by the cluster and sentinel tests: a stream of
//! complete OTP conversations that records every call and judges every
//! answer, so an outage can be measured and a wrong answer cannot hide.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use otp_service::proto::{
    CancelOtpRequest, SendOtpRequest, TimeLeftRequest, VerifyOtpRequest, VerifyOtpResult,
    otp_service_client::OtpServiceClient,
};
use tokio::{task::JoinHandle, time::Instant};
use tonic::{Code, transport::Channel};

use super::{RecordingGateway, TestApp, concurrent::wrong_code, wait_for};

/// Longest a call may take before it counts as hung.
pub const CALL_DEADLINE: Duration = Duration::from_secs(5);

/// One call made by the [`ConversationStream`].
#[derive(Debug, Clone)]
pub struct Call {
    /// The RPC, so a failure message says which call it was.
    pub rpc: &'static str,
    pub started: Instant,
    pub ended: Instant,
    /// `None`: answered; `Some(code)`: the gRPC error code.
    pub error: Option<Code>,
    /// Set when the answer contradicts what the store holds: approving a wrong
    /// or used code, rejecting the right one, a hang, or an error other than
    /// UNAVAILABLE. Must never happen.
    pub wrong: Option<String>,
    /// The call completed a conversation: the right code was approved.
    pub approved: bool,
}

/// Workers that each repeat, on a fresh phone every time: SendOtp (with an
/// idempotency key), TimeLeft, VerifyOtp with a wrong code, VerifyOtp with
/// the texted code, (after an approval) the same code again, and CancelOtp —
/// so every store script runs, and every answer is judged. A conversation whose call fails moves on to
/// a new phone. Bounded: each worker stops by itself after 60 s.
pub struct ConversationStream {
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl ConversationStream {
    pub fn start(app: &TestApp, workers: usize) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|_| {
                let worker = Worker {
                    app_client: app.client(),
                    sms: app.sms.clone(),
                    calls: Arc::clone(&calls),
                };
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let give_up = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                        worker.conversation().await;
                    }
                })
            })
            .collect();
        Self {
            calls,
            stop,
            workers,
        }
    }

    pub fn snapshot(&self) -> Vec<Call> {
        self.calls.lock().expect("calls lock").clone()
    }

    /// Waits (up to `deadline`) for a call that started at or after `since`
    /// and matches `wanted`.
    pub async fn wait_for_call(
        &self,
        what: &str,
        since: Instant,
        deadline: Duration,
        wanted: impl Fn(&Call) -> bool,
    ) -> Call {
        wait_for(what, deadline, || {
            let found = self
                .snapshot()
                .into_iter()
                .find(|call| call.started >= since && wanted(call));
            async move { found }
        })
        .await
    }

    pub async fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.expect("worker did not panic");
        }
        self.calls.lock().expect("calls lock").clone()
    }
}

struct Worker {
    app_client: OtpServiceClient<Channel>,
    sms: RecordingGateway,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// What a call's answer (or failure) says about the conversation.
enum Verdict {
    /// Expected; carry on with the conversation.
    Continue,
    /// Expected, but the conversation cannot go on (a failed call, or the
    /// code is gone): start a new one.
    Abandon,
}

impl Worker {
    async fn conversation(&self) {
        let phone = fresh_phone();
        let sent = self
            .call("SendOtp", |mut client| {
                let phone = phone.clone();
                async move {
                    client
                        .send_otp(SendOtpRequest {
                            // The key makes every send claim and complete an
                            // idempotency entry too.
                            idempotency_key: format!("conversation-{}", &phone[1..]),
                            phone_number: phone,
                            ..Default::default()
                        })
                        .await
                        .map(|_| None)
                }
            })
            .await;
        let Some(()) = sent else { return };
        let Some(code) = self.sms.last_code_for(&phone) else {
            self.record_wrong("SendOtp succeeded but nothing was texted");
            return;
        };
        let left = self
            .call("TimeLeft", |mut client| {
                let phone = phone.clone();
                async move {
                    client
                        .time_left(TimeLeftRequest {
                            phone_number: phone,
                        })
                        .await
                        .map(|response| {
                            let left = response.into_inner();
                            // Pending, unless the code was lost in a failover.
                            (left.pending && left.seconds_left > 120)
                                .then(|| format!("TimeLeft beyond the TTL: {left:?}"))
                        })
                }
            })
            .await;
        if left.is_none() {
            return;
        }
        // A wrong guess: INCORRECT, or EXPIRED if the code was lost in a
        // failover (asynchronous replication); APPROVED would be a breach.
        let wrong = wrong_code(&code);
        let verdict = self
            .verify(&phone, &wrong, |result| match result {
                VerifyOtpResult::Incorrect => Ok(Verdict::Continue),
                VerifyOtpResult::Expired => Ok(Verdict::Abandon),
                other => Err(format!("wrong code answered {other:?}")),
            })
            .await;
        if !matches!(verdict, Some(Verdict::Continue)) {
            return;
        }
        let verdict = self
            .verify(&phone, &code, |result| match result {
                VerifyOtpResult::Approved => Ok(Verdict::Continue),
                VerifyOtpResult::Expired => Ok(Verdict::Abandon),
                other => Err(format!("texted code answered {other:?}")),
            })
            .await;
        if !matches!(verdict, Some(Verdict::Continue)) {
            return;
        }
        let verdict = self
            .verify(&phone, &code, |result| match result {
                VerifyOtpResult::Expired => Ok(Verdict::Continue),
                other => Err(format!("a used code answered {other:?}")),
            })
            .await;
        if !matches!(verdict, Some(Verdict::Continue)) {
            return;
        }
        // Nothing is left to cancel once the code is used.
        self.call("CancelOtp", |mut client| async move {
            client
                .cancel_otp(CancelOtpRequest {
                    phone_number: phone,
                })
                .await
                .map(|response| {
                    response
                        .into_inner()
                        .cancelled
                        .then(|| "CancelOtp cancelled a used code".to_owned())
                })
        })
        .await;
    }

    async fn verify(
        &self,
        phone: &str,
        code: &str,
        judge: impl Fn(VerifyOtpResult) -> Result<Verdict, String>,
    ) -> Option<Verdict> {
        let started = Instant::now();
        let mut client = self.app_client.clone();
        let request = VerifyOtpRequest {
            phone_number: phone.to_owned(),
            code: code.to_owned(),
            ..Default::default()
        };
        let answer = tokio::time::timeout(CALL_DEADLINE, client.verify_otp(request)).await;
        let mut approved = false;
        let (error, wrong, verdict) = match answer {
            Ok(Ok(response)) => {
                let result = response.into_inner().result();
                match judge(result) {
                    Ok(verdict) => {
                        approved = result == VerifyOtpResult::Approved;
                        (None, None, Some(verdict))
                    }
                    Err(why) => (None, Some(why), None),
                }
            }
            Ok(Err(status)) => (Some(status.code()), unexpected_error(status.code()), None),
            Err(_) => (
                Some(Code::DeadlineExceeded),
                Some(format!("VerifyOtp hung for {CALL_DEADLINE:?}")),
                None,
            ),
        };
        self.record(Call {
            rpc: "VerifyOtp",
            started,
            ended: Instant::now(),
            error,
            wrong,
            approved,
        });
        verdict
    }

    /// Runs one non-verify call, whose answer `make` judges (`Some(why)`:
    /// a wrong answer); `Some(())` if it succeeded.
    async fn call<F, Fut>(&self, rpc: &'static str, make: F) -> Option<()>
    where
        F: FnOnce(OtpServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<Option<String>, tonic::Status>>,
    {
        let started = Instant::now();
        let answer = tokio::time::timeout(CALL_DEADLINE, make(self.app_client.clone())).await;
        let (error, wrong) = match answer {
            Ok(Ok(wrong)) => (None, wrong),
            Ok(Err(status)) => (Some(status.code()), unexpected_error(status.code())),
            Err(_) => (
                Some(Code::DeadlineExceeded),
                Some(format!("call hung for {CALL_DEADLINE:?}")),
            ),
        };
        let succeeded = error.is_none();
        self.record(Call {
            rpc,
            started,
            ended: Instant::now(),
            error,
            wrong,
            approved: false,
        });
        succeeded.then_some(())
    }

    fn record_wrong(&self, why: &str) {
        let now = Instant::now();
        self.record(Call {
            rpc: "SendOtp",
            started: now,
            ended: now,
            error: None,
            wrong: Some(why.to_owned()),
            approved: false,
        });
    }

    fn record(&self, call: Call) {
        self.calls.lock().expect("calls lock").push(call);
    }
}

/// During an outage a call may fail, but only as UNAVAILABLE (retry later).
fn unexpected_error(code: Code) -> Option<String> {
    (code != Code::Unavailable).then(|| format!("failed with {code:?}, not UNAVAILABLE"))
}

/// A number used by no other conversation in this process (650 area code,
/// so it never meets `unique_phone`'s numbers; a million before it repeats).
fn fresh_phone() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "+16502{:06}",
        NEXT.fetch_add(1, Ordering::Relaxed) % 1_000_000
    )
}

/// Waits until the OTP service's health (readiness) reports `wanted`;
/// returns when it was seen. The server-wide `""` (liveness) must stay
/// SERVING throughout: a failover is not a reason to restart the process.
pub async fn wait_for_health(app: &TestApp, wanted: &str, deadline: Duration) -> Instant {
    wait_for(&format!("health {wanted}"), deadline, || async {
        let overall = app.health("").await;
        assert_eq!(overall, "SERVING", "liveness does not follow the store");
        let service = app.health("otp.v1.OtpService").await;
        (service == wanted).then(Instant::now)
    })
    .await
}

/// What the stream saw from the moment a node was killed.
#[derive(Debug)]
pub struct Outage {
    /// Calls that started after the kill.
    pub calls: usize,
    /// Of those, how many failed (all UNAVAILABLE, or the check panics).
    pub failures: usize,
    /// From the kill to the end of the first failed call.
    pub first_failure: Duration,
    /// From the kill to the end of the last failed call.
    pub last_failure: Duration,
    /// Slowest call that overlapped the outage.
    pub slowest_call: Duration,
}

/// Checks every call the stream made (none answered wrongly, none hung, every
/// failure UNAVAILABLE, at least one failure after `killed_at`) and sums up
/// the outage.
pub fn judge_outage(calls: &[Call], killed_at: Instant) -> Outage {
    let wrong: Vec<&Call> = calls.iter().filter(|call| call.wrong.is_some()).collect();
    let rpcs: Vec<&str> = wrong.iter().map(|call| call.rpc).collect();
    assert!(
        wrong.is_empty(),
        "{} wrong answers (from {rpcs:?}), e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let after: Vec<&Call> = calls
        .iter()
        .filter(|call| call.ended >= killed_at)
        .collect();
    let failed: Vec<&Call> = after
        .iter()
        .copied()
        .filter(|call| call.error.is_some())
        .collect();
    let (Some(first), Some(last)) = (
        failed.iter().map(|call| call.ended).min(),
        failed.iter().map(|call| call.ended).max(),
    ) else {
        panic!("no call failed after the kill: the test did not test an outage");
    };
    let slowest_call = after
        .iter()
        .filter(|call| call.started <= last)
        .map(|call| call.ended - call.started)
        .max()
        .unwrap_or_default();
    Outage {
        calls: after.len(),
        failures: failed.len(),
        first_failure: first - killed_at,
        last_failure: last - killed_at,
        slowest_call,
    }
}

/// How a failover ended: when calls and health came back, and the judged outage.
pub struct Recovery {
    /// When the first code was approved after the promotion.
    pub first_approval: Instant,
    /// When readiness reported SERVING again.
    pub serving_at: Instant,
    /// The outage judged from `killed_at` (see [`judge_outage`]).
    pub outage: Outage,
}

/// After a promotion: waits for an approval and for SERVING, keeps the
/// stream going a second more, stops it, and asserts that every call after
/// recovery succeeded — without the service being restarted.
pub async fn wait_for_recovery(
    stream: ConversationStream,
    app: &TestApp,
    killed_at: Instant,
    promoted_at: Instant,
) -> Recovery {
    let first_approval = stream
        .wait_for_call(
            "a code is approved after the failover",
            promoted_at,
            Duration::from_secs(15),
            |call| call.approved,
        )
        .await
        .ended;
    let serving_at = wait_for_health(app, "SERVING", Duration::from_secs(10)).await;
    let calls = stop_after_a_steady_second(stream, "after recovery").await;
    let outage = judge_outage(&calls, killed_at);
    Recovery {
        first_approval,
        serving_at,
        outage,
    }
}

/// Keeps the stream going one more second, stops it, and asserts that every
/// call started in that second succeeded (`when` names the moment in the
/// failure message). Returns every call made.
pub async fn stop_after_a_steady_second(stream: ConversationStream, when: &str) -> Vec<Call> {
    let steady_from = Instant::now();
    stream
        .wait_for_call("more calls", steady_from, Duration::from_secs(10), |call| {
            call.ended >= steady_from + Duration::from_secs(1)
        })
        .await;
    let calls = stream.stop().await;
    let late_failures: Vec<_> = calls
        .iter()
        .filter(|call| call.started >= steady_from && call.error.is_some())
        .collect();
    assert!(late_failures.is_empty(), "{when}: {late_failures:?}");
    calls
}
