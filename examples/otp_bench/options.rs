//! Command line of the load generator. Hand-parsed: a dozen flags do not
//! justify another dependency.

use std::{path::PathBuf, time::Duration};

use crate::workload::Mix;

pub const USAGE: &str = "\
otp_bench: gRPC load generator for otp-service

USAGE:
  otp_bench load [OPTIONS]             drive a server and report rps and latency
  otp_bench startup [OPTIONS] -- CMD…  time CMD from spawn to health SERVING

load OPTIONS:
  --target URL          server to drive                    [http://127.0.0.1:50051]
  --connections C       HTTP/2 connections                 [4]
  --in-flight K         calls in flight per connection     [16]
  --duration SECS       measured time                      [10]
  --warmup SECS         unmeasured time before it          [2]
  --requests N          stop after N measured calls (still bounded by --duration)
  --rate RPS            open loop: start calls on a fixed schedule of RPS in total
                        (latency-at-load); without it every slot is closed-loop
  --mix SPEC            weighted RPCs: verify, send, time-left, e.g.
                        `verify` or `verify=90,time-left=10`  [verify]
  --phones N            distinct numbers seeded with SendOtp before the run,
                        for verify and time-left           [20000]
  --phone-offset N      first number's index (keep runs on one store apart) [0]
  --codes-from FILE     the server's stdout with the console gateway's
                        `SMS to <number>: <text>` lines; gives right codes to
                        verify (without it every guess is a random code)
  --server-pid PID      also report that process's CPU use and memory from /proc
  --pause-after-seed S  wait S seconds after seeding (to zero a profiler's counters)
  --label NAME          name of this run in the report
  --json FILE           also write the report as JSON

startup OPTIONS:
  --trials N            how many times to start CMD        [10]
  --json FILE           also write the result as JSON
  CMD is run with OTP_LISTEN_ADDR set to a free loopback port; it is killed
  once it reports SERVING (and its idle RSS was read).
";

/// What to do.
pub enum Command {
    Load(Box<LoadOptions>),
    Startup(StartupOptions),
}

pub struct LoadOptions {
    pub target: String,
    pub connections: usize,
    pub in_flight: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub requests: Option<u64>,
    pub rate: Option<f64>,
    pub mix: Mix,
    pub phones: u64,
    pub phone_offset: u64,
    pub codes_from: Option<PathBuf>,
    pub server_pid: Option<u32>,
    pub pause_after_seed: Duration,
    pub label: String,
    pub json: Option<PathBuf>,
}

pub struct StartupOptions {
    pub trials: usize,
    pub json: Option<PathBuf>,
    pub command: Vec<String>,
}

/// Parses `args` (without the program name).
pub fn parse(args: Vec<String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("load") => parse_load(args).map(|options| Command::Load(Box::new(options))),
        Some("startup") => parse_startup(args).map(Command::Startup),
        Some(other) => Err(format!("unknown command `{other}`")),
        None => Err("a command is required".to_owned()),
    }
}

fn parse_load(mut args: impl Iterator<Item = String>) -> Result<LoadOptions, String> {
    let mut options = LoadOptions {
        target: "http://127.0.0.1:50051".to_owned(),
        connections: 4,
        in_flight: 16,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        requests: None,
        rate: None,
        mix: Mix::parse("verify")?,
        phones: 20_000,
        phone_offset: 0,
        codes_from: None,
        server_pid: None,
        pause_after_seed: Duration::ZERO,
        label: String::new(),
        json: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => options.target = value()?,
            "--connections" => options.connections = positive(&flag, &value()?)?,
            "--in-flight" => options.in_flight = positive(&flag, &value()?)?,
            "--duration" => options.duration = seconds(&flag, &value()?)?,
            "--warmup" => options.warmup = seconds(&flag, &value()?)?,
            "--requests" => options.requests = Some(positive(&flag, &value()?)?),
            "--rate" => options.rate = Some(positive_f64(&flag, &value()?)?),
            "--mix" => options.mix = Mix::parse(&value()?)?,
            "--phones" => options.phones = positive(&flag, &value()?)?,
            "--phone-offset" => options.phone_offset = number(&flag, &value()?)?,
            "--codes-from" => options.codes_from = Some(value()?.into()),
            "--server-pid" => options.server_pid = Some(number(&flag, &value()?)?),
            "--pause-after-seed" => options.pause_after_seed = seconds(&flag, &value()?)?,
            "--label" => options.label = value()?,
            "--json" => options.json = Some(value()?.into()),
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    if options.duration.is_zero() {
        return Err("--duration must be above 0".to_owned());
    }
    if options.label.is_empty() {
        options.label = options.mix.to_string();
    }
    Ok(options)
}

fn parse_startup(mut args: impl Iterator<Item = String>) -> Result<StartupOptions, String> {
    let mut options = StartupOptions {
        trials: 10,
        json: None,
        command: Vec::new(),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--trials" => options.trials = positive(&flag, &value()?)?,
            "--json" => options.json = Some(value()?.into()),
            "--" => {
                options.command = args.collect();
                break;
            }
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    if options.command.is_empty() {
        return Err("startup needs `-- CMD [ARGS…]`".to_owned());
    }
    Ok(options)
}

fn number<T: std::str::FromStr>(flag: &str, raw: &str) -> Result<T, String> {
    raw.parse()
        .map_err(|_| format!("{flag} must be a whole number (got `{raw}`)"))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    flag: &str,
    raw: &str,
) -> Result<T, String> {
    number(flag, raw)
        .ok()
        .filter(|value| *value > T::default())
        .ok_or_else(|| format!("{flag} must be a whole number above 0 (got `{raw}`)"))
}

fn positive_f64(flag: &str, raw: &str) -> Result<f64, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value > 0.0)
        .ok_or_else(|| format!("{flag} must be a number above 0 (got `{raw}`)"))
}

fn seconds(flag: &str, raw: &str) -> Result<Duration, String> {
    let trimmed = raw.strip_suffix('s').unwrap_or(raw);
    trimmed
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("{flag} must be seconds, e.g. 10 or 2.5s (got `{raw}`)"))
}
