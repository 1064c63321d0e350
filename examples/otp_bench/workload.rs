//! What the load generator asks for: the RPC mix, the phone numbers, and the
//! guesses made for each number.
//!
//! Verify-heavy load follows each seeded number's life: `attempts − 1` wrong
//! guesses, then the right code (approved, so the code is used up). Numbers
//! are taken in windows of up to [`VERIFY_WINDOW`], one guess per number in
//! turn, so two guesses for one number are never in flight together and the
//! wrong/right ratio holds from the first second. Once every number's life is
//! spent, further guesses find no code (EXPIRED); the report counts them.

use std::{
    collections::HashMap,
    fmt,
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// Numbers guessed at in turn; far more than the calls in flight.
pub const VERIFY_WINDOW: u64 = 1024;

/// One kind of RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Verify,
    Send,
    TimeLeft,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::Verify => "verify",
            Rpc::Send => "send",
            Rpc::TimeLeft => "time-left",
        }
    }
}

/// A weighted choice of RPCs, dealt in a fixed interleaved order.
#[derive(Debug, Clone)]
pub struct Mix {
    weights: Vec<(Rpc, u32)>,
    /// One entry per unit of weight, spread out (smooth weighted round robin).
    order: Vec<Rpc>,
}

impl Mix {
    /// `verify`, `send`, `time-left`, or `name=weight,…`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let rpc = match name {
                "verify" => Rpc::Verify,
                "send" => Rpc::Send,
                "time-left" => Rpc::TimeLeft,
                _ => {
                    return Err(format!(
                        "--mix: unknown RPC `{name}` (verify, send, time-left)"
                    ));
                }
            };
            let weight: u32 = weight
                .parse()
                .ok()
                .filter(|w| (1..=1000).contains(w))
                .ok_or_else(|| format!("--mix: weight of {name} must be 1..=1000"))?;
            weights.push((rpc, weight));
        }
        if weights.is_empty() {
            return Err("--mix is empty".to_owned());
        }
        let total: i64 = weights.iter().map(|(_, w)| i64::from(*w)).sum();
        let mut current = vec![0i64; weights.len()];
        let mut order = Vec::new();
        for _ in 0..total {
            for (credit, (_, weight)) in current.iter_mut().zip(&weights) {
                *credit += i64::from(*weight);
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|(i, credit)| (**credit, -(*i as i64)))
                .unwrap_or((0, &0));
            current[best] -= total;
            order.push(weights[best].0);
        }
        Ok(Self { weights, order })
    }

    pub fn contains(&self, rpc: Rpc) -> bool {
        self.weights.iter().any(|(r, _)| *r == rpc)
    }

    fn pick(&self, ticket: u64) -> Rpc {
        self.order[(ticket % self.order.len() as u64) as usize]
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = if self.weights.len() == 1 {
            vec![self.weights[0].0.name().to_owned()]
        } else {
            self.weights
                .iter()
                .map(|(rpc, w)| format!("{}={w}", rpc.name()))
                .collect()
        };
        f.write_str(&parts.join(","))
    }
}

/// The `index`-th benchmark number: +1 415 NXX XXXX, 8 million of them.
pub fn phone_number(index: u64) -> String {
    let exchange = 200 + (index / 10_000) % 800;
    format!("+1415{exchange:03}{:04}", index % 10_000)
}

/// Highest phone index [`phone_number`] keeps distinct.
pub const PHONE_SPACE: u64 = 800 * 10_000;

/// One call to make.
pub enum Call {
    Verify { phone: usize, code: String },
    Send { phone: usize },
    TimeLeft { phone: usize },
}

/// Everything the workers share: numbers, known codes and ticket counters.
pub struct Workload {
    mix: Mix,
    /// Seeded numbers, then as many again for SendOtp (so sends never replace
    /// a code the verify plan relies on).
    phones: Vec<String>,
    seeded: usize,
    codes: Vec<Option<u64>>,
    code_length: u32,
    attempts: u64,
    usable_for_verify: u64,
    tickets: AtomicU64,
    verify_tickets: AtomicU64,
    other_tickets: AtomicU64,
    /// Verify tickets issued after every number's life was spent.
    pub exhausted: AtomicU64,
}

impl Workload {
    pub fn new(mix: Mix, seeded: u64, phone_offset: u64) -> Result<Self, String> {
        let count = if mix.contains(Rpc::Send) {
            seeded * 2
        } else {
            seeded
        };
        if phone_offset + count > PHONE_SPACE {
            return Err(format!(
                "--phone-offset + numbers used ({count}) exceed {PHONE_SPACE}"
            ));
        }
        let seeded = seeded as usize;
        Ok(Self {
            mix,
            phones: (phone_offset..phone_offset + count)
                .map(phone_number)
                .collect(),
            seeded,
            codes: vec![None; seeded],
            code_length: 6,
            attempts: 1,
            usable_for_verify: 0,
            tickets: AtomicU64::new(0),
            verify_tickets: AtomicU64::new(0),
            other_tickets: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        })
    }

    pub fn needs_seeding(&self) -> bool {
        self.mix.contains(Rpc::Verify) || self.mix.contains(Rpc::TimeLeft)
    }

    pub fn seeded_phones(&self) -> &[String] {
        &self.phones[..self.seeded]
    }

    pub fn phone(&self, index: usize) -> &str {
        &self.phones[index]
    }

    /// Records what seeding learnt: code length, guess budget, known codes.
    pub fn set_seed_results(
        &mut self,
        code_length: u32,
        attempts: u32,
        codes: HashMap<String, String>,
    ) {
        self.code_length = code_length.clamp(1, 18);
        self.attempts = u64::from(attempts.max(1));
        for (slot, phone) in self.codes.iter_mut().zip(&self.phones) {
            *slot = codes.get(phone).and_then(|code| code.parse().ok());
        }
        let window = VERIFY_WINDOW.min(self.seeded as u64).max(1);
        self.usable_for_verify = self.seeded as u64 / window * window;
    }

    pub fn codes_known(&self) -> usize {
        self.codes.iter().filter(|c| c.is_some()).count()
    }

    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Verify calls the plan holds before numbers run out of codes.
    pub fn verify_budget(&self) -> u64 {
        self.usable_for_verify * self.attempts
    }

    /// The next call to make.
    pub fn next_call(&self) -> Call {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        match self.mix.pick(ticket) {
            Rpc::Verify => self.next_verify(),
            Rpc::Send => {
                let n = self.other_tickets.fetch_add(1, Ordering::Relaxed);
                let spare = self.phones.len() - self.seeded;
                Call::Send {
                    phone: self.seeded + (n % spare.max(1) as u64) as usize,
                }
            }
            Rpc::TimeLeft => {
                let n = self.other_tickets.fetch_add(1, Ordering::Relaxed);
                Call::TimeLeft {
                    phone: (n % self.seeded.max(1) as u64) as usize,
                }
            }
        }
    }

    fn next_verify(&self) -> Call {
        let n = self.verify_tickets.fetch_add(1, Ordering::Relaxed);
        let window = VERIFY_WINDOW.min(self.seeded as u64).max(1);
        let per_window = window * self.attempts;
        let phone = n / per_window * window + n % window;
        let round = n % per_window / window;
        let modulus = 10u64.pow(self.code_length);
        if phone >= self.usable_for_verify {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            let phone = (phone % self.seeded.max(1) as u64) as usize;
            return self.verify_call(phone, n.wrapping_mul(2_654_435_761) % modulus);
        }
        let phone = phone as usize;
        let code = match self.codes[phone] {
            Some(right) if round + 1 == self.attempts => right,
            // Never equal to the right code: 1 + round < attempts <= 20.
            Some(right) => (right + 1 + round) % modulus,
            // Unknown code: a random guess (right once in 10^length).
            None => n.wrapping_mul(2_654_435_761) % modulus,
        };
        self.verify_call(phone, code)
    }

    fn verify_call(&self, phone: usize, code: u64) -> Call {
        Call::Verify {
            phone,
            code: format!("{code:0width$}", width = self.code_length as usize),
        }
    }
}

/// Reads the console gateway's lines (`SMS to <e164>: <text>`) from `path`
/// until every number in `phones` has a code or `deadline` passes. The code is
/// the first run of `code_length` digits in the text; a later line for a
/// number replaces an earlier one, as a later SendOtp replaces the code.
pub fn read_codes(
    path: &Path,
    phones: &[String],
    code_length: usize,
    deadline: Duration,
) -> Result<HashMap<String, String>, String> {
    let wanted: std::collections::HashSet<&str> = phones.iter().map(String::as_str).collect();
    let give_up = Instant::now() + deadline;
    loop {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let mut codes = HashMap::new();
        for line in text.lines() {
            let Some((to, body)) = line
                .strip_prefix("SMS to ")
                .and_then(|rest| rest.split_once(": "))
            else {
                continue;
            };
            if !wanted.contains(to) {
                continue;
            }
            if let Some(code) = body
                .split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == code_length)
            {
                codes.insert(to.to_owned(), code.to_owned());
            }
        }
        if codes.len() == wanted.len() || Instant::now() >= give_up {
            return Ok(codes);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_spreads_weights_evenly() {
        let mix = Mix::parse("verify=3,time-left=1").unwrap();
        let picks: Vec<Rpc> = (0..8).map(|t| mix.pick(t)).collect();
        assert_eq!(picks.iter().filter(|r| **r == Rpc::TimeLeft).count(), 2);
        assert_eq!(mix.to_string(), "verify=3,time-left=1");
    }

    #[test]
    fn codes_are_read_from_console_gateway_lines() {
        let path = std::env::temp_dir().join(format!("otp_bench-codes-{}", std::process::id()));
        let phones = vec![phone_number(0), phone_number(1)];
        std::fs::write(
            &path,
            format!(
                "SMS to {}: Your OTP verification code is 012345. It expires in 2 min.\n\
                 SMS to +14150000000: Your OTP verification code is 999999.\n\
                 SMS to {}: Your OTP verification code is 111111. It expires in 10 min.\n\
                 SMS to {}: Your OTP verification code is 222222. It expires in 10 min.\n",
                phones[0], phones[1], phones[1]
            ),
        )
        .unwrap();
        let codes = read_codes(&path, &phones, 6, Duration::ZERO).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(codes.len(), 2);
        assert_eq!(codes[&phones[0]], "012345");
        // A later SendOtp replaces the code; "10" (minutes) is not a code.
        assert_eq!(codes[&phones[1]], "222222");
    }

    #[test]
    fn each_number_gets_wrong_guesses_then_its_right_code() {
        let mut workload = Workload::new(Mix::parse("verify").unwrap(), 2048, 0).unwrap();
        let codes = workload
            .seeded_phones()
            .iter()
            .map(|p| (p.clone(), "000123".to_owned()))
            .collect();
        workload.set_seed_results(6, 3, codes);
        let mut right = 0;
        for _ in 0..workload.verify_budget() {
            let Call::Verify { code, .. } = workload.next_call() else {
                panic!("verify only")
            };
            right += usize::from(code == "000123");
        }
        assert_eq!(right, 2048);
        assert_eq!(workload.exhausted.load(Ordering::Relaxed), 0);
    }
}
