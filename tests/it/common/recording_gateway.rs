//! An SMS gateway for tests: records every message and can be told to fail
//! or to hold sends until released. It stands in for the external SMS
//! provider only; everything on our side of the trait is the real code.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use async_trait::async_trait;
use otp_service::{
    domain::PhoneNumber,
    sms::{Accepted, Channel, GatewayError, OutgoingSms, SmsGateway},
};
use tokio::sync::Semaphore;

/// One message the service asked to send.
#[derive(Debug, Clone)]
pub struct SentSms {
    pub to_e164: String,
    pub text: String,
    /// The channel the send asked for.
    pub channel: Channel,
    /// The template locale the text was rendered from (`None`: default).
    pub locale: Option<String>,
}

#[derive(Default)]
struct State {
    sent: Mutex<Vec<SentSms>>,
    failing: AtomicBool,
    /// Sends that entered the gateway and have not returned yet.
    in_flight: AtomicUsize,
    /// When set, each send waits for one permit (tests release them).
    gate: Mutex<Option<Arc<Semaphore>>>,
    /// Takes every channel (by default SMS only, as a deployment without
    /// WhatsApp or voice routes).
    every_channel: AtomicBool,
}

/// Cheap to clone; clones share what they record.
#[derive(Clone, Default)]
pub struct RecordingGateway(Arc<State>);

impl RecordingGateway {
    /// Takes sends on every channel, recording each as it records an SMS:
    /// for tests of what the flow does with any channel (limits, guard).
    pub fn serving_every_channel(self) -> Self {
        self.0.every_channel.store(true, Ordering::SeqCst);
        self
    }

    /// From now on every send fails as if the gateway were down.
    pub fn fail_sends(&self, failing: bool) {
        self.0.failing.store(failing, Ordering::SeqCst);
    }

    /// From now on every send waits until [`RecordingGateway::release`] lets it through.
    pub fn hold_sends(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.0.gate.lock().expect("gate lock") = Some(Arc::clone(&gate));
        gate
    }

    /// Sends currently inside the gateway (e.g. held by [`RecordingGateway::hold_sends`]).
    pub fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::SeqCst)
    }

    pub fn sent(&self) -> Vec<SentSms> {
        self.0.sent.lock().expect("sent lock").clone()
    }

    pub fn count(&self) -> usize {
        self.0.sent.lock().expect("sent lock").len()
    }

    /// The code in the last message sent to `phone` (any spelling).
    pub fn last_code_for(&self, phone: &str) -> Option<String> {
        let e164 = PhoneNumber::parse(phone).ok()?.e164().to_owned();
        let sent = self.sent();
        let text = &sent.iter().rev().find(|sms| sms.to_e164 == e164)?.text;
        extract_code(text)
    }
}

/// The first run of four or more digits in a message.
pub fn extract_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 4)
        .map(str::to_owned)
}

#[async_trait]
impl SmsGateway for RecordingGateway {
    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<Accepted, GatewayError> {
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = self.record(sms).await;
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        result.map(|()| Accepted {
            channel: sms.channel,
            ..Accepted::default()
        })
    }

    fn serves(&self, channel: Channel) -> bool {
        channel == Channel::Sms || self.0.every_channel.load(Ordering::SeqCst)
    }
}

impl RecordingGateway {
    async fn record(&self, sms: &OutgoingSms<'_>) -> Result<(), GatewayError> {
        let gate = self.0.gate.lock().expect("gate lock").clone();
        if let Some(gate) = gate {
            gate.acquire()
                .await
                .map_err(|_| GatewayError::Unavailable("gate closed".into()))?
                .forget();
        }
        if self.0.failing.load(Ordering::SeqCst) {
            return Err(GatewayError::Unavailable("test gateway is down".into()));
        }
        self.0.sent.lock().expect("sent lock").push(SentSms {
            to_e164: sms.to.e164().to_owned(),
            text: sms.text.to_owned(),
            channel: sms.channel,
            locale: sms.locale.map(str::to_owned),
        });
        Ok(())
    }
}
