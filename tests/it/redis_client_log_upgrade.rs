//! A client's send log as the first compact layout kept it (a key of its
//! own, `<prefix>:c` + the client's 16 raw bytes) is adopted by the bucket
//! layout after it: an upgrade resets no client's limit.

use deadpool_redis::redis::{self, AsyncCommands};
use otp_service::proto::SendOtpRequest;
use tonic::Code;

use crate::common::{RedisServer, TestApp, unique_phone};

const PREFIX: &str = "upgrade:otp";

fn request(client_key: &str) -> SendOtpRequest {
    SendOtpRequest {
        phone_number: unique_phone(),
        client_key: client_key.into(),
        ..Default::default()
    }
}

/// The one field of the client buckets (`<prefix>:c` + 2 bytes): its key,
/// name (the client's 16 raw bytes) and value.
async fn only_bucket_field(redis: &RedisServer) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut connection = redis.connection().await;
    let keys: Vec<Vec<u8>> = connection.keys(format!("{PREFIX}:c*")).await.expect("KEYS");
    let buckets: Vec<Vec<u8>> = keys
        .into_iter()
        .filter(|key| key.len() == PREFIX.len() + 4)
        .collect();
    assert_eq!(buckets.len(), 1, "one client, one bucket");
    let fields: Vec<(Vec<u8>, Vec<u8>)> = connection.hgetall(&buckets[0]).await.expect("HGETALL");
    let clients: Vec<_> = fields
        .into_iter()
        .filter(|(name, _)| name.len() == 16)
        .collect();
    assert_eq!(clients.len(), 1, "one client's field");
    let (name, value) = clients.into_iter().next().expect("one field");
    (buckets[0].clone(), name, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_log_of_the_first_compact_layout_still_counts() {
    let redis = RedisServer::start().await;
    let env = [
        ("OTP_REDIS_PREFIX", PREFIX),
        ("OTP_CLIENT_SEND_LIMIT", "2"),
        ("OTP_GLOBAL_SEND_LIMIT", "1000"),
    ];
    let client = "203.0.113.9";
    let first = TestApp::builder().redis(&redis).env(&env).spawn().await;
    for _ in 0..2 {
        first
            .send_request(request(client))
            .await
            .expect("within the client's limit");
    }
    drop(first);

    // Rewrite the client's two sends as the release before the buckets
    // kept them: a record with no code state (a 0 byte) and the sends, under
    // a key of its own that expires with the log; and say older records
    // could exist, as a database that release ran on would.
    let (bucket, client_bytes, value) = only_bucket_field(&redis).await;
    assert_eq!(value.len(), 6 + 2 * 8, "kept-until and two sends");
    let mut connection = redis.connection().await;
    let mut old_key = format!("{PREFIX}:c").into_bytes();
    old_key.extend_from_slice(&client_bytes);
    let mut old_value = vec![0u8];
    old_value.extend_from_slice(&value[6..]);
    let _: () = redis::cmd("SET")
        .arg(&old_key)
        .arg(&old_value)
        .arg("PX")
        .arg(600_000)
        .query_async(&mut connection)
        .await
        .expect("SET");
    let _: () = connection.hdel(&bucket, &client_bytes).await.expect("HDEL");
    let _: () = connection
        .hset(format!("{PREFIX}:layout"), "legacy", "1")
        .await
        .expect("HSET");

    let upgraded = TestApp::builder().redis(&redis).env(&env).spawn().await;
    let status = upgraded
        .send_request(request(client))
        .await
        .expect_err("the client's two earlier sends still count");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let old_left: bool = connection.exists(&old_key).await.expect("EXISTS");
    assert!(!old_left, "the old key is adopted and deleted");
    let (_, adopted_client, adopted) = only_bucket_field(&redis).await;
    assert_eq!(adopted_client, client_bytes);
    assert_eq!(
        &adopted[6..],
        &value[6..],
        "the same two sends, now in the bucket"
    );
    assert_eq!(upgraded.sms.count(), 0, "no SMS for the refused send");
}
