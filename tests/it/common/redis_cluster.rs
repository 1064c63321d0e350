//! A real Redis Cluster on loopback: 3 masters and 3 replicas made with
//! `redis-server --cluster-enabled yes` and `redis-cli --cluster create`,
//! with a 1 s node timeout so a failover takes seconds, not the default 15+.

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use deadpool_redis::redis;

use super::redis_nodes::{NodeSet, free_port, info_field, query, wait_blocking};

/// How long a node may be unreachable before the cluster fails it over.
pub const NODE_TIMEOUT_MS: u32 = 1000;

/// A running cluster; every process is killed on Drop.
pub struct RedisCluster {
    nodes: NodeSet,
}

impl RedisCluster {
    /// Starts six nodes, joins them as 3 masters with one replica each, and
    /// waits until every node reports `cluster_state:ok` and every replica is
    /// in sync. Blocking: call it from a blocking thread.
    pub fn start() -> Self {
        let mut nodes = NodeSet::new("cluster");
        let ports: Vec<u16> = (0..6)
            .map(|_| {
                nodes.start(|port| {
                    let args = [
                        "--port".to_owned(),
                        port.to_string(),
                        // Not port+10000, which may be taken or out of range.
                        "--cluster-port".into(),
                        free_port().to_string(),
                        "--bind".into(),
                        "127.0.0.1".into(),
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{port}.conf"),
                        "--cluster-node-timeout".into(),
                        NODE_TIMEOUT_MS.to_string(),
                        // A replica may take over however long its link was
                        // down: the tests kill masters on purpose.
                        "--cluster-replica-validity-factor".into(),
                        "0".into(),
                        // Replicas sync at once instead of after the default 5 s.
                        "--repl-diskless-sync-delay".into(),
                        "0".into(),
                        "--save".into(),
                        String::new(),
                        "--appendonly".into(),
                        "no".into(),
                    ];
                    args.to_vec()
                })
            })
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|port| format!("127.0.0.1:{port}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is installed");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_until_healthy(Duration::from_secs(20));
        cluster
    }

    /// One cluster for the whole test process (the behaviour suite and the
    /// store contract on `StoreKind::RedisCluster`), started on first use.
    /// Tests share it safely: each server or store gets its own key prefix
    /// and each test its own phone numbers. Never failed over: a test that
    /// kills a node starts a cluster of its own ([`RedisCluster::start`]).
    /// Processes end with the test process (see `NodeSet`).
    pub fn shared() -> &'static RedisCluster {
        static SHARED: OnceLock<RedisCluster> = OnceLock::new();
        SHARED.get_or_init(RedisCluster::start)
    }

    /// `REDIS_CLUSTER_URLS` naming every node as a seed.
    pub fn urls(&self) -> String {
        self.nodes
            .running()
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Ports of the masters that own slots, as the live nodes see it.
    pub fn masters(&self) -> Vec<u16> {
        let mut masters: Vec<u16> = self
            .cluster_nodes()
            .into_iter()
            .filter(|node| node.is_master && node.owns_slots && !node.failed)
            .map(|node| node.port)
            .collect();
        masters.sort_unstable();
        masters
    }

    /// The port of the replica of the master on `master`.
    pub fn replica_of(&self, master: u16) -> u16 {
        // Asked of the replicas themselves (INFO replication), not of one
        // node's CLUSTER NODES: gossip may not yet have told that node which
        // master a replica follows, although the replica's link is up.
        wait_blocking("a replica of the master", Duration::from_secs(10), || {
            self.nodes.running().into_iter().find(|&port| {
                query::<String>(port, redis::cmd("INFO").arg("replication")).is_some_and(|info| {
                    info_field(&info, "role").as_deref() == Some("slave")
                        && info_field(&info, "master_port").as_deref()
                            == Some(master.to_string().as_str())
                })
            })
        })
    }

    /// SIGKILL to the node on `port`.
    pub fn kill(&mut self, port: u16) {
        self.nodes.kill(port);
    }

    /// Whether `port` is a master (answers `ROLE` with `master`).
    pub fn is_master(&self, port: u16) -> bool {
        query::<Vec<redis::Value>>(port, &redis::cmd("ROLE"))
            .and_then(|role| role.into_iter().next())
            .is_some_and(|first| matches!(first, redis::Value::BulkString(ref s) if s == b"master"))
    }

    /// Waits until every running node reports `cluster_state:ok` and sees
    /// every slot served, and every replica's link to its master is up.
    pub fn wait_until_healthy(&self, deadline: Duration) {
        wait_blocking("cluster_state:ok on every node", deadline, || {
            self.nodes
                .running()
                .into_iter()
                .all(|port| {
                    let info = query::<String>(port, redis::cmd("CLUSTER").arg("INFO"));
                    info.is_some_and(|info| {
                        info_field(&info, "cluster_state").as_deref() == Some("ok")
                            && info_field(&info, "cluster_slots_ok").as_deref() == Some("16384")
                    })
                })
                .then_some(())
        });
        wait_blocking("replicas in sync", deadline, || {
            self.nodes
                .running()
                .into_iter()
                .all(|port| {
                    let info = query::<String>(port, redis::cmd("INFO").arg("replication"));
                    info.is_some_and(|info| {
                        info_field(&info, "role").as_deref() == Some("master")
                            || info_field(&info, "master_link_status").as_deref() == Some("up")
                    })
                })
                .then_some(())
        });
    }

    /// Keys matching `pattern` on each master, by master port.
    pub fn keys_by_master(&self, pattern: &str) -> HashMap<u16, Vec<Vec<u8>>> {
        self.masters()
            .into_iter()
            .map(|port| {
                let keys = query::<Vec<Vec<u8>>>(port, redis::cmd("KEYS").arg(pattern))
                    .expect("KEYS answers");
                (port, keys)
            })
            .collect()
    }

    /// `SCRIPT FLUSH` on every running node: the next EVALSHA meets NOSCRIPT.
    pub fn flush_scripts(&self) {
        for port in self.nodes.running() {
            let _: String = query(port, redis::cmd("SCRIPT").arg("FLUSH")).expect("SCRIPT FLUSH");
        }
    }

    fn cluster_nodes(&self) -> Vec<ClusterNode> {
        let raw = self
            .nodes
            .running()
            .into_iter()
            .find_map(|port| query::<String>(port, redis::cmd("CLUSTER").arg("NODES")))
            .expect("a node answers CLUSTER NODES");
        raw.lines().filter_map(ClusterNode::parse).collect()
    }
}

/// One line of `CLUSTER NODES`.
struct ClusterNode {
    port: u16,
    is_master: bool,
    failed: bool,
    owns_slots: bool,
}

impl ClusterNode {
    /// `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?;
        let port = address
            .split('@')
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        let flags = fields.get(2)?;
        Some(Self {
            port,
            is_master: flags.split(',').any(|flag| flag == "master"),
            failed: flags
                .split(',')
                .any(|flag| flag == "fail" || flag == "fail?"),
            owns_slots: fields.len() > 8,
        })
    }
}
