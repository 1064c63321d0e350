//! What /proc says about a process (CPU time, resident memory), and the
//! start-to-SERVING measurement.

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::options::StartupOptions;

/// Clock ticks per second in /proc/<pid>/stat: USER_HZ, which Linux fixes at
/// 100 for every user-space ABI it supports.
const USER_HZ: f64 = 100.0;

/// User plus system CPU time of every thread of `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// A process's memory, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident now (`VmRSS`): counts the binary's own pages, shared with
    /// the page cache.
    pub rss: u64,
    /// `VmRSS` at its peak (`VmHWM`).
    pub hwm: u64,
    /// Anonymous resident memory (`RssAnon`): what the process allocated,
    /// the part a sidecar adds to its pod whatever else runs there.
    pub anon: u64,
    /// Proportional set size (`Pss` of `smaps_rollup`): shared pages split
    /// between the processes mapping them; `None` where the kernel lacks it.
    pub pss: Option<u64>,
}

/// The memory of process `pid` now.
pub fn memory_kib(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Some(Memory {
        rss: kib_field(&status, "VmRSS:")?,
        hwm: kib_field(&status, "VmHWM:")?,
        anon: kib_field(&status, "RssAnon:")?,
        pss: kib_field(&rollup, "Pss:"),
    })
}

/// The KiB after `name` on its line of a `/proc` file.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `grpc.health.v1.Health/Check` (whole server) every millisecond until
/// it answers SERVING, or gives up at `deadline`.
async fn wait_until_serving(port: u16, deadline: Instant) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(|err| err.to_string())?
        .connect_timeout(Duration::from_millis(200));
    loop {
        if let Ok(channel) = endpoint.connect().await {
            let mut health = HealthClient::new(channel);
            loop {
                let status = health
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(|response| response.into_inner().status());
                match status {
                    Ok(ServingStatus::Serving) => return Ok(()),
                    Ok(_) if Instant::now() < deadline => {}
                    Ok(other) => return Err(format!("still {other:?} at the deadline")),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if Instant::now() >= deadline {
            return Err("not SERVING within the deadline".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Starts the command `trials` times; each time measures spawn → SERVING,
/// then, after a short settle, its idle resident memory.
pub async fn startup(options: StartupOptions) -> Result<(), String> {
    let mut to_serving = Vec::new();
    let mut idle_rss = Vec::new();
    let mut idle_anon = Vec::new();
    let mut idle_pss = Vec::new();
    for _ in 0..options.trials {
        let port = free_port().map_err(|err| format!("no free port: {err}"))?;
        let spawned = Instant::now();
        let mut child = Command::new(&options.command[0])
            .args(&options.command[1..])
            .env("OTP_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", options.command[0]))?;
        let ready = wait_until_serving(port, spawned + Duration::from_secs(10)).await;
        let elapsed = spawned.elapsed();
        if ready.is_ok() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(memory) = memory_kib(child.id()) {
                idle_rss.push(memory.rss);
                idle_anon.push(memory.anon);
                idle_pss.extend(memory.pss);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        ready?;
        to_serving.push(elapsed.as_secs_f64() * 1000.0);
    }
    to_serving.sort_by(f64::total_cmp);
    let median_ms = to_serving[to_serving.len() / 2];
    let idle_kib = median(&mut idle_rss);
    let idle_anon_kib = median(&mut idle_anon);
    let idle_pss_kib = median(&mut idle_pss);
    println!(
        "start to SERVING over {} starts: median {median_ms:.1} ms, min {:.1} ms, max {:.1} ms",
        to_serving.len(),
        to_serving[0],
        to_serving[to_serving.len() - 1]
    );
    println!(
        "idle 300 ms after SERVING, medians: RSS {:.1} MiB, RssAnon {:.1} MiB, PSS {:.1} MiB",
        idle_kib as f64 / 1024.0,
        idle_anon_kib as f64 / 1024.0,
        idle_pss_kib as f64 / 1024.0
    );
    if let Some(path) = options.json {
        let report = json!({
            "command": options.command,
            "trials": to_serving.len(),
            "start_to_serving_ms": {
                "median": median_ms,
                "min": to_serving[0],
                "max": to_serving[to_serving.len() - 1],
            },
            "idle_rss_kib": idle_kib,
            "idle_rss_anon_kib": idle_anon_kib,
            "idle_pss_kib": idle_pss_kib,
        });
        std::fs::write(&path, format!("{report:#}\n"))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(())
}

/// The median of `values` (0 when empty).
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}
