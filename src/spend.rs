//! Spend you can see and cap, in money: the price table (`OTP_PRICES_FILE`,
//! `price_table.rs`), amounts as whole millionths of its currency
//! (`money.rs`), a send's estimated price (`estimate.rs`: segments × the
//! price of the provider; `region_memo.rs` the destination's country, cheap
//! for +1 numbers), and the caps (`OTP_SPEND_LIMIT_PER_HOUR`,
//! `OTP_SPEND_LIMIT_PER_DAY`, `OTP_CALLER_SPEND_LIMIT_PER_DAY`) with the
//! worst case they allow. Pure rules: the stores keep the ledgers
//! (`store::spend_window`), the flow reserves and refunds (`otp/spend_guard.rs`).

mod estimate;
mod money;
mod price_table;
mod region_memo;

use std::{fmt, time::Duration};

pub use estimate::{Estimate, PriceUnknown, Pricing, VOICE_CALL_MINUTES};
pub use money::{AmountError, Currency, MICROS_PER_UNIT, Micros};
pub use price_table::{Channel, PriceRow, PriceTable, PricesError};
pub use region_memo::RegionMemo;

/// Which spend cap a window enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpendCap {
    /// Every replica together, over the last hour (`OTP_SPEND_LIMIT_PER_HOUR`).
    PerHour,
    /// Every replica together, over the last 24 h (`OTP_SPEND_LIMIT_PER_DAY`).
    PerDay,
    /// One authenticated caller, over the last 24 h (`OTP_CALLER_SPEND_LIMIT_PER_DAY`).
    CallerPerDay,
}

impl SpendCap {
    /// Every cap (metrics export each at 0 from start).
    pub const ALL: [SpendCap; 3] = [SpendCap::PerHour, SpendCap::PerDay, SpendCap::CallerPerDay];

    /// The stable name in `ErrorInfo` metadata, metric labels and events.
    pub fn as_str(self) -> &'static str {
        match self {
            SpendCap::PerHour => "spend_per_hour",
            SpendCap::PerDay => "spend_per_day",
            SpendCap::CallerPerDay => "caller_spend_per_day",
        }
    }

    /// The window the cap is over.
    pub fn period(self) -> Duration {
        match self {
            SpendCap::PerHour => Duration::from_secs(3_600),
            SpendCap::PerDay | SpendCap::CallerPerDay => Duration::from_secs(86_400),
        }
    }

    /// The variable that sets it.
    pub fn variable(self) -> &'static str {
        match self {
            SpendCap::PerHour => "OTP_SPEND_LIMIT_PER_HOUR",
            SpendCap::PerDay => "OTP_SPEND_LIMIT_PER_DAY",
            SpendCap::CallerPerDay => "OTP_CALLER_SPEND_LIMIT_PER_DAY",
        }
    }
}

/// The spend caps in force; `None`: that cap is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendCaps {
    /// `OTP_SPEND_LIMIT_PER_HOUR`.
    pub per_hour: Option<Micros>,
    /// `OTP_SPEND_LIMIT_PER_DAY`.
    pub per_day: Option<Micros>,
    /// `OTP_CALLER_SPEND_LIMIT_PER_DAY` (authenticated callers only).
    pub caller_per_day: Option<Micros>,
}

impl SpendCaps {
    /// Each cap that is on, with its limit.
    pub fn in_force(&self) -> impl Iterator<Item = (SpendCap, Micros)> {
        [
            (SpendCap::PerHour, self.per_hour),
            (SpendCap::PerDay, self.per_day),
            (SpendCap::CallerPerDay, self.caller_per_day),
        ]
        .into_iter()
        .filter_map(|(cap, limit)| Some((cap, limit?)))
    }

    /// Whether any cap is on (else a send costs no store call for spend).
    pub fn any(&self) -> bool {
        self.in_force().next().is_some()
    }
}

/// Spend accounting as configured: the prices and the caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendSettings {
    /// The price table (`OTP_PRICES_FILE`).
    pub prices: PriceTable,
    /// The caps.
    pub caps: SpendCaps,
}

/// The most the service can spend in an hour: `by_send_cap` (the global
/// send cap × the highest price one send can cost: an SMS of the most
/// segments a message takes, a WhatsApp message, or a call of
/// [`VOICE_CALL_MINUTES`], at the file's highest price on that channel) and
/// the spend caps, whichever is lowest; `None` when nothing bounds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorstCase {
    /// The currency of the amounts.
    pub currency: Currency,
    /// What `OTP_GLOBAL_SEND_LIMIT` allows at the highest price, if on.
    pub by_send_cap: Option<Micros>,
    /// What the hourly and daily spend caps allow in an hour, if on.
    pub by_spend_caps: Option<Micros>,
}

impl WorstCase {
    /// The case for `settings` with `global_per_minute` sends a minute at
    /// most, each of at most `max_segments` segments.
    pub fn of(settings: &SpendSettings, global_per_minute: Option<u32>, max_segments: u64) -> Self {
        let highest = |channel| settings.prices.highest(channel).unwrap_or(Micros::ZERO);
        let per_send = [
            highest(Channel::Sms).times(max_segments),
            highest(Channel::WhatsApp),
            highest(Channel::Voice).times(VOICE_CALL_MINUTES),
        ]
        .into_iter()
        .max()
        .unwrap_or(Micros::ZERO);
        let by_send_cap =
            global_per_minute.map(|per_minute| per_send.times(u64::from(per_minute) * 60));
        let caps = settings.caps;
        let by_spend_caps = [caps.per_hour, caps.per_day].into_iter().flatten().min();
        Self {
            currency: settings.prices.currency(),
            by_send_cap,
            by_spend_caps,
        }
    }

    /// The bound: the lower of the two, if either is on.
    pub fn per_hour(&self) -> Option<Micros> {
        [self.by_send_cap, self.by_spend_caps]
            .into_iter()
            .flatten()
            .min()
    }
}

impl fmt::Display for WorstCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let currency = self.currency;
        match self.per_hour() {
            Some(bound) => write!(f, "{bound} {currency} per hour")?,
            None => write!(f, "unbounded (no global send cap and no spend cap)")?,
        }
        if let Some(by_send_cap) = self.by_send_cap {
            write!(
                f,
                " (global send cap at the highest price: {by_send_cap} {currency}"
            )?;
            match self.by_spend_caps {
                Some(caps) => write!(f, "; spend caps: {caps} {currency})"),
                None => write!(f, ")"),
            }
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(caps: SpendCaps) -> SpendSettings {
        let prices = PriceTable::parse(
            "currency = \"USD\"\n[twilio]\n\"*\" = { sms = \"0.05\" }\nUS = { sms = \"0.0079\" }",
        )
        .expect("valid");
        SpendSettings { prices, caps }
    }

    /// README, "Spend in money": the worked example on the shipped prices file.
    #[test]
    fn the_readmes_worked_example_holds() {
        let prices = PriceTable::parse(include_str!("../deploy/prices.example.toml"))
            .expect("the example parses");
        let amount = |raw| Micros::parse(raw).expect("amount");
        let open = SpendSettings {
            prices: prices.clone(),
            caps: SpendCaps::default(),
        };
        assert_eq!(
            WorstCase::of(&open, Some(60), 1).per_hour(),
            Some(amount("216"))
        );
        let capped = SpendSettings {
            prices,
            caps: SpendCaps {
                per_hour: Some(amount("25")),
                per_day: Some(amount("200")),
                caller_per_day: None,
            },
        };
        assert_eq!(
            WorstCase::of(&capped, Some(60), 1).to_string(),
            "25 USD per hour (global send cap at the highest price: 216 USD; spend caps: 25 USD)"
        );
        let us = capped
            .prices
            .price(crate::sms::ProviderName::Twilio, Channel::Sms, Some("US"))
            .expect("a US price");
        assert_eq!(amount("25").0 / us.0, 3012);
        assert_eq!(amount("25").0 / amount("0.06").0, 416);
    }

    #[test]
    fn the_worst_case_is_the_send_cap_at_the_highest_price_or_the_spend_cap_if_lower() {
        let open = WorstCase::of(&settings(SpendCaps::default()), Some(60), 2);
        // 60 a minute × 60 minutes × 2 segments × 0.05.
        assert_eq!(open.per_hour(), Some(Micros::parse("360").expect("amount")));
        let capped = SpendCaps {
            per_hour: Some(Micros::parse("25").expect("amount")),
            ..SpendCaps::default()
        };
        let capped = WorstCase::of(&settings(capped), Some(60), 2);
        assert_eq!(
            capped.per_hour(),
            Some(Micros::parse("25").expect("amount"))
        );
        assert_eq!(
            capped.to_string(),
            "25 USD per hour (global send cap at the highest price: 360 USD; spend caps: 25 USD)"
        );
        let unbounded = WorstCase::of(&settings(SpendCaps::default()), None, 1);
        assert_eq!(unbounded.per_hour(), None);
    }
}
