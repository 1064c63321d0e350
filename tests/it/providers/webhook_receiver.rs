//! The Python receiver of tests/clients/webhook_receiver.py (the recipe the
//! README points operators to) run for real: it checks our signatures,
//! refuses forged and stale ones, and drops a repeated request id.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use otp_service::sms::{SIGNATURE_HEADER, sign};
use serde_json::{Value, json};

use super::app_with;
use crate::common::{
    sms_standins::{WEBHOOK_SECRET, assert_code_works, code_in, webhook_vars},
    unique_phone, wait_for,
};

/// The receiver as a child process; killed on drop.
struct PythonReceiver {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl PythonReceiver {
    async fn start() -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/webhook_receiver.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .env("OTP_SMS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the receiver");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stdout);
        let pipe = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        let mut receiver = Self {
            child,
            port: 0,
            stdout,
        };
        receiver.port = wait_for("the receiver listens", Duration::from_secs(10), || {
            let port = receiver
                .line_after("listening ")
                .and_then(|p| p.parse().ok());
            async move { port }
        })
        .await;
        receiver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sms", self.port)
    }

    /// The rest of the last line starting with `prefix`.
    fn line_after(&self, prefix: &str) -> Option<String> {
        let lines = self.stdout.lock().expect("lines");
        lines
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix(prefix).map(str::to_owned))
    }

    /// Waits until it has printed `count` messages, and returns them all.
    async fn sent_at_least(&self, count: usize) -> Vec<Value> {
        wait_for(
            "the receiver prints the SMS",
            Duration::from_secs(5),
            || {
                let sent = self.sent();
                async move { (sent.len() >= count).then_some(sent) }
            },
        )
        .await
    }

    /// The messages it verified and "sent" so far.
    fn sent(&self) -> Vec<Value> {
        let lines = self.stdout.lock().expect("lines");
        lines
            .iter()
            .filter_map(|line| line.strip_prefix("sms "))
            .map(|json| serde_json::from_str(json).expect("JSON line"))
            .collect()
    }

    /// Posts `body` with `signature` ourselves, as a forger or a replayer would.
    async fn post(&self, body: &[u8], signature: &str) -> u16 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
            .post(self.url())
            .header(SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("receiver answers")
            .status()
            .as_u16()
    }
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_receiver_verifies_our_signature_and_refuses_forgeries() {
    let receiver = PythonReceiver::start().await;
    let mut vars = webhook_vars(&receiver.url());
    vars.push(("OTP_SMS_GATEWAY".into(), "webhook".into()));
    let app = app_with(&vars).await;
    let phone = unique_phone();

    app.send(&phone).await.expect("the receiver took it");

    let sent = receiver.sent_at_least(1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["destination"], phone);
    let text = sent[0]["text"].as_str().expect("text");
    assert_code_works(&app, &phone, &code_in(text)).await;

    let body = serde_json::to_vec(&json!({
        "request_id": "f00dfeedf00dfeedf00dfeedf00dfeed",
        "destination": "+14155550123",
        "text": "Your code is 123456",
        "code_length": 6,
        "expires_in_seconds": 120,
        "locale": null,
    }))
    .expect("JSON");
    let secret = WEBHOOK_SECRET.as_bytes();
    let forged = sign(b"not-the-secret-not-the-secret-!!", now(), &body);
    assert_eq!(receiver.post(&body, &forged).await, 401, "wrong key");
    let stale = sign(secret, now() - 600, &body);
    assert_eq!(
        receiver.post(&body, &stale).await,
        401,
        "replayed after 10 min"
    );
    let tampered = sign(secret, now(), &body);
    let mut changed = body.clone();
    changed[20] ^= 1;
    assert_eq!(
        receiver.post(&changed, &tampered).await,
        401,
        "body changed"
    );
    assert_eq!(receiver.post(&body, "t=1,v1=zz").await, 401, "garbage");
    assert_eq!(receiver.post(&body, &sign(secret, now(), &body)).await, 200);
    assert_eq!(
        receiver.post(&body, &sign(secret, now(), &body)).await,
        200,
        "a retry with the same request id is taken again"
    );
    // A new message after the retry: once it is printed, anything the
    // retry printed would have been too (one pipe, in order).
    let marker = String::from_utf8(body.clone())
        .expect("utf-8")
        .replace("f00dfeed", "0ddba115");
    let marker = marker.as_bytes();
    assert_eq!(
        receiver.post(marker, &sign(secret, now(), marker)).await,
        200
    );
    let sent = receiver.sent_at_least(3).await;
    let ids: Vec<&str> = sent
        .iter()
        .filter_map(|sms| sms["request_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3, "the retry was not sent again: {ids:?}");
    assert_eq!(ids[1], "f00dfeedf00dfeedf00dfeedf00dfeed");
    assert_eq!(ids[2], "0ddba1150ddba1150ddba1150ddba115");
}
