//! A real Sentinel set-up on loopback: one master, one replica and three
//! sentinels (quorum 2), with a 1 s down-after so a failover takes seconds.

use std::{fs, sync::OnceLock, time::Duration};

use deadpool_redis::redis;

use super::redis_nodes::{NodeSet, info_field, query, wait_blocking};

/// The name the sentinels monitor the master under (`REDIS_SENTINEL_MASTER`).
pub const MASTER_NAME: &str = "otp-test";
/// How long the master may be unreachable before a sentinel calls it down.
pub const DOWN_AFTER_MS: u32 = 1000;

/// A running set-up; every process is killed on Drop.
pub struct RedisSentinels {
    nodes: NodeSet,
    sentinels: Vec<u16>,
}

impl RedisSentinels {
    /// Starts the master, its replica (waiting until it is in sync), then the
    /// sentinels, and waits until every sentinel knows the replica and the
    /// two other sentinels, so that a failover can happen. Blocking.
    pub fn start() -> Self {
        let set_up = Self::spawn();
        wait_blocking(
            "every sentinel knows the replica and the other sentinels",
            Duration::from_secs(20),
            || {
                set_up
                    .sentinels
                    .iter()
                    .all(|&sentinel| {
                        let fields = sentinel_master_fields(sentinel);
                        fields.get("num-slaves").map(String::as_str) == Some("1")
                            && fields.get("num-other-sentinels").map(String::as_str) == Some("2")
                    })
                    .then_some(())
            },
        );
        set_up
    }

    /// One set-up for the whole test process, started on first use (see
    /// `RedisCluster::shared` for why sharing is safe). Never failed over
    /// (failover tests start their own with [`RedisSentinels::start`]), so
    /// it is ready as soon as every sentinel names the master; the sentinels
    /// finding each other (which takes seconds) is not waited for.
    pub fn shared() -> &'static RedisSentinels {
        static SHARED: OnceLock<RedisSentinels> = OnceLock::new();
        SHARED.get_or_init(|| {
            let set_up = Self::spawn();
            wait_blocking(
                "every sentinel names the master",
                Duration::from_secs(10),
                || {
                    set_up
                        .sentinels
                        .iter()
                        .all(|&sentinel| sentinel_master_fields(sentinel).contains_key("ip"))
                        .then_some(())
                },
            );
            set_up
        })
    }

    fn spawn() -> Self {
        let mut nodes = NodeSet::new("sentinel");
        let data_node = |port: u16| {
            ["--port", &port.to_string(), "--bind", "127.0.0.1"]
                .into_iter()
                .chain(["--save", "", "--appendonly", "no"])
                // Replicas sync at once instead of after the default 5 s.
                .chain(["--repl-diskless-sync-delay", "0"])
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let master = nodes.start(data_node);
        let replica = nodes.start(|port| {
            let mut args = data_node(port);
            args.extend(["--replicaof".into(), "127.0.0.1".into(), master.to_string()]);
            args
        });
        wait_blocking("replica in sync", Duration::from_secs(10), || {
            let info = query::<String>(replica, redis::cmd("INFO").arg("replication"))?;
            (info_field(&info, "master_link_status").as_deref() == Some("up")).then_some(())
        });
        let dir = nodes.dir().to_owned();
        let sentinels: Vec<u16> = (0..3)
            .map(|_| {
                nodes.start(|port| {
                    // Sentinels rewrite their config file, so each gets its own.
                    let config = dir.join(format!("sentinel-{port}.conf"));
                    fs::write(
                        &config,
                        format!(
                            "port {port}\n\
                             bind 127.0.0.1\n\
                             sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
                             sentinel failover-timeout {MASTER_NAME} 5000\n\
                             sentinel parallel-syncs {MASTER_NAME} 1\n"
                        ),
                    )
                    .expect("sentinel config");
                    vec![config.display().to_string(), "--sentinel".into()]
                })
            })
            .collect();
        Self { nodes, sentinels }
    }

    /// `REDIS_SENTINEL_URLS`.
    pub fn urls(&self) -> String {
        self.sentinels
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master's port according to the first sentinel that answers.
    pub fn master(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|&sentinel| {
                let address: Vec<String> = query(
                    sentinel,
                    redis::cmd("SENTINEL")
                        .arg("GET-MASTER-ADDR-BY-NAME")
                        .arg(MASTER_NAME),
                )?;
                address.get(1)?.parse().ok()
            })
            .expect("a sentinel names the master")
    }

    /// SIGKILL to the process on `port`.
    pub fn kill(&mut self, port: u16) {
        self.nodes.kill(port);
    }

    /// Asks the sentinels to fail over now, without waiting for the master to
    /// be down: the master stays up and is demoted to a replica.
    pub fn fail_over(&self) {
        let sentinel = self.sentinels[0];
        let _: String = query(
            sentinel,
            redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER_NAME),
        )
        .expect("SENTINEL FAILOVER is accepted");
    }

    /// How many EVALSHA calls the server on `port` has run (`INFO
    /// commandstats`); `None` if INFO could not be read — never a silent 0.
    pub fn evalsha_calls(&self, port: u16) -> Option<u64> {
        self.command_calls(port, "evalsha")
    }

    /// How many times the server on `port` has run `command` (lower case, as
    /// `INFO commandstats` names it); `None` if INFO could not be read.
    pub fn command_calls(&self, port: u16, command: &str) -> Option<u64> {
        let info: String = query(port, redis::cmd("INFO").arg("commandstats"))?;
        let calls = info_field(&info, &format!("cmdstat_{command}"))
            .and_then(|stats| {
                stats
                    .split(',')
                    .find_map(|field| field.strip_prefix("calls="))
                    .and_then(|calls| calls.parse().ok())
            })
            // No such line: this server has not run the command yet.
            .unwrap_or(0);
        Some(calls)
    }

    /// Whether the server on `port` answers `ROLE` with `master`.
    pub fn is_master(&self, port: u16) -> bool {
        query::<Vec<redis::Value>>(port, &redis::cmd("ROLE"))
            .and_then(|role| role.into_iter().next())
            .is_some_and(|first| matches!(first, redis::Value::BulkString(ref s) if s == b"master"))
    }
}

/// `SENTINEL MASTER <name>` as field → value.
fn sentinel_master_fields(sentinel: u16) -> std::collections::HashMap<String, String> {
    let flat: Vec<String> = query(
        sentinel,
        redis::cmd("SENTINEL").arg("MASTER").arg(MASTER_NAME),
    )
    .unwrap_or_default();
    flat.chunks(2)
        .filter_map(|pair| Some((pair.first()?.clone(), pair.get(1)?.clone())))
        .collect()
}
