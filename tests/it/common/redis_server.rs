//! A private `redis-server` per test: on a free loopback port, no
//! persistence, killed when dropped. Never the shared Redis on 6379.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use deadpool_redis::redis::{self, aio::MultiplexedConnection};

use super::wait_for;

/// Path of the server binary; `REDIS_SERVER_BIN` overrides it.
fn redis_server_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A running (or deliberately killed) redis-server child process.
pub struct RedisServer {
    port: u16,
    /// ACL user and password when the server requires them.
    credentials: Option<(String, String)>,
    /// Extra `redis-server` arguments (e.g. `--maxmemory-policy allkeys-lru`).
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts a server with extra configuration arguments.
    pub async fn start_with_args(args: &[&str]) -> Self {
        Self::start_inner(None, args.iter().map(|a| (*a).to_owned()).collect()).await
    }

    /// Starts a server that refuses everyone but ACL user `user` with `password`.
    pub async fn start_with_user(user: &str, password: &str) -> Self {
        Self::start_with(Some((user.to_owned(), password.to_owned()))).await
    }

    async fn start_with(credentials: Option<(String, String)>) -> Self {
        Self::start_inner(credentials, Vec::new()).await
    }

    async fn start_inner(credentials: Option<(String, String)>, extra_args: Vec<String>) -> Self {
        // The port is free when asked for but could be taken before
        // redis-server binds it; a few fresh tries make that race harmless.
        for _ in 0..5 {
            let port = free_port();
            let mut server = Self {
                port,
                credentials: credentials.clone(),
                extra_args: extra_args.clone(),
                child: None,
            };
            if server.spawn_and_wait().await {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// `redis://[user:password@]127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((user, password)) => format!("redis://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILL: the server vanishes mid-stream, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps no data).
    pub async fn restart(&mut self) {
        self.kill();
        // The old socket may linger briefly; retry until it binds.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.spawn_and_wait().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
        }
    }

    /// SIGSTOP: the process keeps its socket but answers nothing, like a
    /// host that hangs. [`RedisServer::resume`] undoes it. Returns once the
    /// kernel reports the process stopped (`kill` only queues the signal: on
    /// a loaded machine Redis may still answer for a moment after it), so a
    /// call that starts afterwards surely meets a frozen Redis.
    pub async fn freeze(&self) {
        self.signal("-STOP");
        let pid = self.pid();
        wait_for("redis-server stopped", Duration::from_secs(10), || {
            let stopped = process_state(pid) == Some('T');
            async move { stopped.then_some(()) }
        })
        .await;
    }

    /// SIGCONT after [`RedisServer::freeze`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }

    /// `calls=` of `command` (lower case, as `INFO commandstats` names it;
    /// 0 when never called).
    pub async fn command_calls(&self, command: &str) -> u64 {
        let mut connection = self.connection().await;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await
            .expect("INFO");
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map(|n| n.parse().expect("a count"))
            .unwrap_or(0)
    }

    /// A direct connection, for tests that inspect what the store wrote.
    pub async fn connection(&self) -> MultiplexedConnection {
        self.connection_to_db(0).await
    }

    /// A direct connection to logical database `db`.
    pub async fn connection_to_db(&self, db: u8) -> MultiplexedConnection {
        redis::Client::open(format!("{}/{db}", self.url()))
            .expect("valid URL")
            .get_multiplexed_async_connection()
            .await
            .expect("redis-server accepts connections")
    }

    /// Turns the default (password-less) user off and adds the ACL user.
    fn acl_args(&self) -> Vec<String> {
        let Some((user, password)) = &self.credentials else {
            return Vec::new();
        };
        ["--user", "default", "off", "--user", user, "on"]
            .into_iter()
            .map(str::to_owned)
            .chain([
                format!(">{password}"),
                "~*".into(),
                "&*".into(),
                "+@all".into(),
            ])
            .collect()
    }

    /// Spawns the child and waits for PING; false if it exited (port taken).
    async fn spawn_and_wait(&mut self) -> bool {
        let child = Command::new(redis_server_bin())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(self.acl_args())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        let url = self.url();
        let up = wait_for("redis-server answers PING", Duration::from_secs(10), || {
            let url = url.clone();
            let exited = self
                .child
                .as_mut()
                .map(|child| matches!(child.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            async move {
                if exited {
                    return Some(false);
                }
                ping(&url).await.then_some(true)
            }
        })
        .await;
        if !up {
            self.child = None;
        }
        up
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Resume first: a frozen process cannot act on SIGKILL until it runs.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The state letter of `/proc/<pid>/stat` (`T`: stopped by a signal).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`; comm may hold spaces or parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let attempt = async {
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(_))
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
