//! A set of local redis-server processes (cluster nodes, or a master, its
//! replica and sentinels) for the cluster and sentinel harnesses: free
//! loopback ports (never 6379), one scratch directory, killed on Drop.
//!
//! Blocking (std processes, sync Redis client), so a set can be started from
//! any thread and shared by tests that each run their own tokio runtime. A
//! set kept in a `static` is never dropped, so a watchdog shell kills its
//! processes and removes its directory once this test process has exited.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use deadpool_redis::redis::{self, FromRedisValue};

/// Path of the server binary; `REDIS_SERVER_BIN` overrides it.
fn redis_server_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

/// One redis-server process of a [`NodeSet`].
struct Node {
    port: u16,
    child: Option<Child>,
}

/// Processes started together and torn down together.
pub struct NodeSet {
    dir: PathBuf,
    nodes: Vec<Node>,
    watchdog: Option<Child>,
}

impl NodeSet {
    /// An empty set with a fresh scratch directory named after `label`.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "otp-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory for redis-server");
        // Kills every process whose pid file is still in the directory, then
        // the directory, as soon as this test process is gone (for a set
        // that lives in a `static`; Drop does the same for the others).
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 0.2; done; \
             for f in '{dir}'/*.pid; do [ -f \"$f\" ] && kill -9 \"$(cat \"$f\")\" 2>/dev/null; done; \
             rm -rf '{dir}'",
            parent = std::process::id(),
            dir = dir.display()
        );
        let watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        Self {
            dir,
            nodes: Vec::new(),
            watchdog: Some(watchdog),
        }
    }

    /// The scratch directory (config files, cluster state).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a redis-server with `args(port)` on a free port and waits until
    /// it answers PING; retried on fresh ports if it exits (a port taken
    /// between choosing and binding it). Returns the port.
    pub fn start(&mut self, mut args: impl FnMut(u16) -> Vec<String>) -> u16 {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = self.spawn_and_wait(port, args(port)) {
                self.nodes.push(Node {
                    port,
                    child: Some(child),
                });
                return port;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// SIGKILL to the process on `port`: it vanishes, as in a crash.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("a node of this set");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_file(self.dir.join(format!("{port}.pid")));
        }
    }

    /// Ports of the processes still running.
    pub fn running(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.port)
            .collect()
    }

    fn spawn_and_wait(&self, port: u16, args: Vec<String>) -> Option<Child> {
        let log = fs::File::create(self.dir.join(format!("{port}.log"))).expect("log file");
        let mut child = Command::new(redis_server_bin())
            .args(&args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        fs::write(self.dir.join(format!("{port}.pid")), child.id().to_string()).expect("pid file");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                let _ = fs::remove_file(self.dir.join(format!("{port}.pid")));
                return None;
            }
            if query::<String>(port, &redis::cmd("PING")).is_some() {
                return Some(child);
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within 10 s"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeSet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` on the server at `port` with short timeouts; `None` on any
/// error (refused, timed out, error reply, unexpected type).
pub fn query<T: FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    connection
        .set_read_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    cmd.query(&mut connection).ok()
}

/// The `field:value` lines of an INFO-style reply (INFO, CLUSTER INFO).
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// Polls `probe` every 20 ms until it yields `Some`, or panics after `deadline`.
pub fn wait_blocking<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < give_up,
            "timed out after {deadline:?} waiting for: {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
