//! Load generator for otp-service (and for `echo_server`, its baseline).
//!
//! `otp_bench load` opens C HTTP/2 connections with K call slots each, seeds
//! numbers with SendOtp when the mix needs pending codes, warms up, then
//! measures for a fixed time (or call count) and reports rps, results and
//! errors by kind, and latency percentiles from an HDR histogram, as a table
//! and optionally as JSON. `otp_bench startup` times a server from spawn to
//! health SERVING. `scripts/bench.sh` runs the whole comparison; see
//! BENCHMARKS.md for the method.

mod driver;
mod options;
mod process;
mod report;
mod workload;

use std::{
    collections::HashMap,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use otp_service::proto::{SendOtpRequest, otp_service_client::OtpServiceClient};
use tonic::transport::{Channel, Endpoint};

use crate::{
    driver::{Budget, Tally, Window},
    options::{Command, LoadOptions},
    report::{RunFacts, ServerFacts},
    workload::Workload,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        args.first().map(String::as_str),
        Some("help" | "--help" | "-h")
    ) {
        print!("{}", options::USAGE);
        return ExitCode::SUCCESS;
    }
    let command = match options::parse(args) {
        Ok(command) => command,
        Err(why) => {
            eprintln!("otp_bench: {why}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    // Same runtime shape as the servers: one worker per CPU this process may use.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("otp_bench: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Load(options) => load(*options).await,
            Command::Startup(options) => process::startup(options).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("otp_bench: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Opens `connections` HTTP/2 connections, retrying for up to 10 s while the
/// server is still starting.
async fn connect(target: &str, connections: usize) -> Result<Vec<Channel>, String> {
    let endpoint = Endpoint::from_shared(target.to_owned())
        .map_err(|err| format!("--target {target}: {err}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(1));
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut channels = Vec::with_capacity(connections);
    while channels.len() < connections {
        // Each `connect` opens its own HTTP/2 connection.
        match endpoint.connect().await {
            Ok(channel) => channels.push(channel),
            Err(err) if Instant::now() >= give_up => {
                return Err(format!("cannot connect to {target}: {err}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Ok(channels)
}

/// Sends one code to every seeded number; returns (code length, guesses allowed).
async fn seed(
    channels: &[Channel],
    slots: usize,
    workload: &Arc<Workload>,
) -> Result<(u32, u32), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for slot in 0..slots {
        let mut client = OtpServiceClient::new(channels[slot % channels.len()].clone());
        let (next, workload) = (Arc::clone(&next), Arc::clone(workload));
        tasks.push(tokio::spawn(async move {
            let mut learnt = None;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(phone) = workload.seeded_phones().get(index) else {
                    return Ok(learnt);
                };
                let sent = client
                    .send_otp(SendOtpRequest {
                        phone_number: phone.clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|status| format!("seeding SendOtp failed: {status}"))?
                    .into_inner();
                learnt = Some((sent.code_length, sent.attempts_remaining));
            }
        }));
    }
    let mut learnt = None;
    for task in tasks {
        let answer: Result<Option<(u32, u32)>, String> =
            task.await.map_err(|err| format!("seeding task: {err}"))?;
        if let Some((length, attempts)) = answer? {
            let (_, fewest) = learnt.get_or_insert((length, attempts));
            *fewest = (*fewest).min(attempts);
        }
    }
    learnt.ok_or_else(|| "seeding sent nothing".to_owned())
}

async fn load(options: LoadOptions) -> Result<(), String> {
    let channels = connect(&options.target, options.connections).await?;
    let slots = options.connections * options.in_flight;
    let mut workload = Workload::new(options.mix.clone(), options.phones, options.phone_offset)?;
    if workload.needs_seeding() {
        let started = Instant::now();
        let shared = Arc::new(workload);
        let (code_length, attempts) = seed(&channels, slots, &shared).await?;
        workload = Arc::into_inner(shared).ok_or("seeding tasks still hold the workload")?;
        let codes = match &options.codes_from {
            Some(path) => workload::read_codes(
                path,
                workload.seeded_phones(),
                code_length as usize,
                Duration::from_secs(10),
            )?,
            None => HashMap::new(),
        };
        workload.set_seed_results(code_length, attempts, codes);
        eprintln!(
            "otp_bench: seeded {} numbers in {:.1} s ({} codes known, {} guesses each)",
            options.phones,
            started.elapsed().as_secs_f64(),
            workload.codes_known(),
            workload.attempts(),
        );
        if options.codes_from.is_some() && workload.codes_known() < workload.seeded_phones().len() {
            return Err(format!(
                "only {} of {} codes found in the server's output",
                workload.codes_known(),
                options.phones
            ));
        }
    }
    let workload = Arc::new(workload);
    tokio::time::sleep(options.pause_after_seed).await;

    let start = Instant::now();
    let window = Window {
        measure_from: start + options.warmup,
        end: start + options.warmup + options.duration,
    };
    let budget = Arc::new(Budget {
        limit: options.requests,
        measured: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let schedule = options
        .rate
        .map(|rate| driver::pace(rate, start, window.end));
    let mut tasks = Vec::with_capacity(slots);
    for slot in 0..slots {
        let client = OtpServiceClient::new(channels[slot % channels.len()].clone());
        tasks.push(tokio::spawn(driver::run_slot(
            client,
            Arc::clone(&workload),
            window,
            Arc::clone(&budget),
            schedule.clone(),
        )));
    }
    let usage = tokio::spawn(sample_cpu(window, Arc::clone(&budget), options.server_pid));

    let mut tally = Tally::new();
    for task in tasks {
        tally.merge(&task.await.map_err(|err| format!("worker: {err}"))?);
    }
    let (server_cpu, client_cpu, closed) = usage.await.map_err(|err| format!("sampler: {err}"))?;
    let measured = closed.saturating_duration_since(window.measure_from);
    let server = options.server_pid.map(|pid| {
        let memory = process::memory_kib(pid);
        ServerFacts {
            pid,
            cpu: server_cpu,
            rss_kib: memory.map(|memory| memory.rss),
            hwm_kib: memory.map(|memory| memory.hwm),
            anon_kib: memory.map(|memory| memory.anon),
            pss_kib: memory.and_then(|memory| memory.pss),
        }
    });
    let facts = RunFacts {
        label: options.label,
        target: options.target,
        mix: options.mix.to_string(),
        connections: options.connections,
        in_flight: options.in_flight,
        rate: options.rate,
        measured,
        seeded_phones: workload.seeded_phones().len(),
        codes_known: workload.codes_known(),
        attempts: workload.attempts(),
        verify_budget: workload.verify_budget(),
        verify_exhausted: workload.exhausted.load(Ordering::Relaxed),
        server,
        client_cpu,
    };
    let report = report::to_json(&facts, &tally);
    report::print_table(&report);
    if let Some(path) = options.json {
        std::fs::write(&path, format!("{report:#}\n"))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(())
}

/// CPU seconds the server and this process spent inside the measured window,
/// and when the window closed (its end, or when `--requests` were done).
async fn sample_cpu(
    window: Window,
    budget: Arc<Budget>,
    server: Option<u32>,
) -> (Option<f64>, Option<f64>, Instant) {
    let own = std::process::id();
    tokio::time::sleep_until(window.measure_from.into()).await;
    let server_before = server.and_then(process::cpu_seconds);
    let own_before = process::cpu_seconds(own);
    while Instant::now() < window.end && !budget.done.load(Ordering::Relaxed) {
        let tick = (Instant::now() + Duration::from_millis(10)).min(window.end);
        tokio::time::sleep_until(tick.into()).await;
    }
    let closed = Instant::now().min(window.end);
    let server_after = server.and_then(process::cpu_seconds);
    let own_after = process::cpu_seconds(own);
    let spent = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
    (
        spent(server_before, server_after),
        spent(own_before, own_after),
        closed,
    )
}
