//! [`TestApp`]: the real server, in-process on 127.0.0.1:0, and the calls a
//! test makes to it. Every test starts one with [`TestApp::builder`].

use std::{net::SocketAddr, sync::Arc, time::Duration};

use otp_service::{
    Application,
    proto::{
        CancelOtpRequest, SendOtpRequest, SendOtpResponse, TimeLeftRequest, TimeLeftResponse,
        VerifyOtpRequest, VerifyOtpResponse,
        admin::otp_admin_service_client::OtpAdminServiceClient,
        otp_service_client::OtpServiceClient,
    },
    sms::SmsGateway,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Status, transport::Channel};

use super::{
    RecordingGateway, RedisCluster, RedisSentinels, RedisServer, StoreKind, connect, health_at,
    redis_sentinel::MASTER_NAME,
    store_set_up::{StoreSetUp, console_named, test_config},
};

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The health-only listener, when the test set `OTP_HEALTH_ADDR`.
    pub health_addr: Option<SocketAddr>,
    pub client: OtpServiceClient<Channel>,
    /// The connection `client` uses, for the admin API's client.
    channel: Channel,
    /// What the server texted; stays empty when the server runs the gateway
    /// its settings select ([`TestAppBuilder::configured_gateway`]).
    pub sms: RecordingGateway,
    /// The private redis-server of a [`StoreKind::Redis`] app, kept alive
    /// as long as the app.
    _redis: Option<RedisServer>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Where the server's store comes from.
enum StoreSource {
    /// Set up by the harness ([`TestAppBuilder::store`]).
    Harness(StoreKind),
    /// A Redis the test owns: these settings point at it.
    Owned(Vec<(String, String)>),
}

/// Which SMS gateway the server sends through.
enum Gateway {
    /// A recording gateway (by default a fresh one) the test can inspect.
    Recording(RecordingGateway),
    /// The gateway the settings select, exactly as `main` would build it.
    Configured,
}

/// How to start a [`TestApp`]. By default: the in-memory store, default
/// settings and a fresh [`RecordingGateway`].
#[must_use = "call .spawn() to start the server"]
pub struct TestAppBuilder {
    store: StoreSource,
    env: Vec<(String, String)>,
    gateway: Gateway,
}

impl TestApp {
    /// Starts describing a server; `.spawn()` starts it.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            store: StoreSource::Harness(StoreKind::Memory),
            env: Vec::new(),
            gateway: Gateway::Recording(RecordingGateway::default()),
        }
    }
}

impl TestAppBuilder {
    /// A store set up by the harness: memory, a private redis-server, or the
    /// process's shared Cluster or Sentinel set-up under a prefix of its own.
    pub fn store(mut self, store: StoreKind) -> Self {
        self.store = StoreSource::Harness(store);
        self
    }

    /// A redis-server the test owns, so several servers (replicas) can
    /// share it and the test can kill, freeze and restart it.
    pub fn redis(self, server: &RedisServer) -> Self {
        self.owned_store(&[("REDIS_URL", &server.url())])
    }

    /// A Redis Cluster the test owns (e.g. one it is about to fail over).
    pub fn redis_cluster(self, cluster: &RedisCluster) -> Self {
        self.owned_store(&[("REDIS_CLUSTER_URLS", &cluster.urls())])
    }

    /// A Sentinel set-up the test owns (e.g. one it is about to fail over).
    pub fn sentinels(self, set_up: &RedisSentinels) -> Self {
        self.owned_store(&[
            ("REDIS_SENTINEL_URLS", &set_up.urls()),
            ("REDIS_SENTINEL_MASTER", MASTER_NAME),
        ])
    }

    fn owned_store(mut self, vars: &[(&str, &str)]) -> Self {
        self.store = StoreSource::Owned(owned(vars));
        self
    }

    /// Settings, exactly as an operator would set them; they come after the
    /// store's, so they win (e.g. `OTP_REDIS_PREFIX`, or a `REDIS_URL` of a
    /// test's own making). May be called more than once.
    pub fn env(mut self, vars: &[(&str, &str)]) -> Self {
        self.env.extend(owned(vars));
        self
    }

    /// Sends through `gateway`, which the test keeps a clone of (to hold or
    /// fail sends, or to read them after the app is gone).
    pub fn gateway(mut self, gateway: RecordingGateway) -> Self {
        self.gateway = Gateway::Recording(gateway);
        self
    }

    /// Sends through the gateway the settings select (e.g. TextBee at a
    /// local stand-in), exactly as `main` would; `app.sms` stays empty.
    pub fn configured_gateway(mut self) -> Self {
        self.gateway = Gateway::Configured;
        self
    }

    /// Starts the server (and its private Redis, if any) and connects a client.
    pub async fn spawn(self) -> TestApp {
        let (mut vars, redis) = match self.store {
            StoreSource::Harness(kind) => {
                let set_up = StoreSetUp::start(kind).await;
                (set_up.vars, set_up.redis)
            }
            StoreSource::Owned(vars) => (vars, None),
        };
        if matches!(self.gateway, Gateway::Recording(_)) {
            vars.push(console_named());
        }
        vars.extend(self.env);
        let config = test_config(&vars);
        let tls = config.tls.is_some();
        let (app, sms) = match self.gateway {
            Gateway::Recording(sms) => {
                let gateway: Arc<dyn SmsGateway> = Arc::new(sms.clone());
                (Application::build_with_gateway(config, gateway).await, sms)
            }
            Gateway::Configured => (
                Application::build(config).await,
                RecordingGateway::default(),
            ),
        };
        let app = app.expect("server builds");
        numbering_plan_loaded().await;
        let addr = app.local_addr();
        let health_addr = app.health_addr();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = stop.await;
            })
            .await
            .expect("server runs");
        });
        // A TLS server needs a TLS client (common/tls.rs); this one stays
        // unconnected so building it never waits on a handshake.
        let channel = if tls {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("valid URI")
                .connect_lazy()
        } else {
            connect(addr).await
        };
        let client = OtpServiceClient::new(channel.clone());
        TestApp {
            addr,
            health_addr,
            client,
            channel,
            sms,
            _redis: redis,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }
}

fn owned(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl TestApp {
    pub fn client(&self) -> OtpServiceClient<Channel> {
        self.client.clone()
    }

    /// A client of the admin API (`otp.admin.v1`) on the same connection.
    pub fn admin(&self) -> OtpAdminServiceClient<Channel> {
        OtpAdminServiceClient::new(self.channel.clone())
    }

    pub async fn send(&self, phone: &str) -> Result<SendOtpResponse, Status> {
        self.send_request(SendOtpRequest {
            phone_number: phone.into(),
            ..Default::default()
        })
        .await
    }

    pub async fn send_request(&self, request: SendOtpRequest) -> Result<SendOtpResponse, Status> {
        self.client()
            .send_otp(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn cancel(&self, phone: &str) -> Result<bool, Status> {
        self.client()
            .cancel_otp(CancelOtpRequest {
                phone_number: phone.into(),
            })
            .await
            .map(|response| response.into_inner().cancelled)
    }

    /// Sends a code and returns the digits the gateway was asked to text.
    pub async fn send_and_read_code(&self, phone: &str) -> String {
        self.send(phone).await.expect("SendOtp succeeds");
        self.sms.last_code_for(phone).expect("an SMS was recorded")
    }

    pub async fn verify(&self, phone: &str, code: &str) -> Result<VerifyOtpResponse, Status> {
        self.client()
            .verify_otp(VerifyOtpRequest {
                phone_number: phone.into(),
                code: code.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn time_left(&self, phone: &str) -> Result<TimeLeftResponse, Status> {
        self.client()
            .time_left(TimeLeftRequest {
                phone_number: phone.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// `grpc.health.v1.Health/Check` for `service`, as a status name.
    pub async fn health(&self, service: &str) -> String {
        health_at(self.addr, service).await
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops within 10 s")
                .expect("server task did not panic");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Waits (once per process; free afterwards) for phonenumber's numbering
/// plan, which the server loads in the background: until it is loaded, every
/// request blocks a runtime worker on it. That is about a second of CPU in a
/// debug build and took over 5 s on a loaded 2-core machine, so a test's
/// first calls counted as hung; tests time the service, not that.
async fn numbering_plan_loaded() {
    tokio::task::spawn_blocking(|| otp_service::domain::PhoneNumber::parse("+14155550123"))
        .await
        .expect("the numbering plan loads")
        .expect("a valid number");
}
