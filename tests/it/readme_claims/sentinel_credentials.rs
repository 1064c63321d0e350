//! README, configuration: `REDIS_SENTINEL_URLS` — "their credentials and TLS
//! are used for the master too". The credentials half, on a private set-up
//! whose master and sentinel both admit only ACL user `otp` (the default
//! user may only PING, which the harness's readiness check needs). TLS is
//! not covered here: it would need TLS-built redis-server processes and
//! certificates for both.

use std::{fs, time::Duration};

use deadpool_redis::redis::{self, AsyncCommands};
use otp_service::proto::VerifyOtpResult;

use crate::common::{
    TestApp,
    redis_nodes::{NodeSet, query},
    unique_phone, wait_for,
};

const MASTER_NAME: &str = "otp-credentials";
const USER: &str = "otp";
const PASSWORD: &str = "sentinel-and-master-pw-41c9";

/// ACL rules: `otp` may do anything with the password; everyone else may
/// only PING.
fn acl_args() -> Vec<String> {
    // redis-server joins the words after `--user` into one directive.
    let user_rule = format!("--user {USER} on >{PASSWORD} ~* &* +@all");
    "--user default on nopass ~* &* -@all +ping"
        .split(' ')
        .chain(user_rule.split(' '))
        .map(str::to_owned)
        .collect()
}

/// The sentinel URL carries the only credentials the service is given; the
/// master refuses anyone without them, yet the service serves and its codes
/// land on the master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_credentials_are_used_for_the_master_too() {
    let (nodes, master, sentinel) = tokio::task::block_in_place(|| {
        let mut nodes = NodeSet::new("sentinel-credentials");
        let master = nodes.start(|port| {
            let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
                .into_iter()
                .chain(["--save", "", "--appendonly", "no"])
                .map(str::to_owned)
                .collect();
            args.extend(acl_args());
            args
        });
        let dir = nodes.dir().to_owned();
        let sentinel = nodes.start(|port| {
            let config = dir.join(format!("sentinel-{port}.conf"));
            fs::write(
                &config,
                format!(
                    "port {port}\n\
                     bind 127.0.0.1\n\
                     user default on nopass ~* &* -@all +ping\n\
                     user {USER} on >{PASSWORD} ~* &* +@all\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 1\n\
                     sentinel auth-user {MASTER_NAME} {USER}\n\
                     sentinel auth-pass {MASTER_NAME} {PASSWORD}\n"
                ),
            )
            .expect("sentinel config");
            vec![config.display().to_string(), "--sentinel".into()]
        });
        (nodes, master, sentinel)
    });
    assert_eq!(
        query::<String>(master, redis::cmd("SET").arg("probe").arg("1")),
        None,
        "the master refuses a caller without the credentials"
    );

    let sentinel_url = format!("redis://{USER}:{PASSWORD}@127.0.0.1:{sentinel}");
    let app = TestApp::builder()
        .env(&[
            ("REDIS_SENTINEL_URLS", &sentinel_url),
            ("REDIS_SENTINEL_MASTER", MASTER_NAME),
            ("OTP_SMS_GATEWAY", "console"),
        ])
        .spawn()
        .await;
    wait_for("SERVING on the master", Duration::from_secs(10), || async {
        (app.health("otp.v1.OtpService").await == "SERVING").then_some(())
    })
    .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;

    let master_url = format!("redis://{USER}:{PASSWORD}@127.0.0.1:{master}");
    let mut on_master = redis::Client::open(master_url)
        .expect("valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("the credentials open the master");
    let keys: Vec<Vec<u8>> = on_master.keys("*").await.expect("KEYS");
    assert!(!keys.is_empty(), "the code is stored on the master");
    let verified = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
    drop(nodes);
}
