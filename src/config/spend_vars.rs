//! Spend: the price table (`OTP_PRICES_FILE`) and the spend caps
//! (`OTP_SPEND_LIMIT_PER_HOUR`, `OTP_SPEND_LIMIT_PER_DAY`,
//! `OTP_CALLER_SPEND_LIMIT_PER_DAY`), and the routes it orders (a
//! `cheapest:` route in `OTP_SMS_ROUTES`, `OTP_WHATSAPP_ROUTES` or
//! `OTP_VOICE_ROUTES`, by that channel's prices).

use clap::Args;

use super::ConfigError;
use crate::{
    sms::SmsConfig,
    spend::{Channel, Micros, PriceTable, SpendCaps, SpendSettings},
};

/// What a send costs and how much may be spent.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Spend")]
pub struct SpendVars {
    /// A TOML file of prices per provider, country and channel, in one currency
    #[arg(long, env = "OTP_PRICES_FILE")]
    pub prices_file: Option<String>,
    /// Most estimated spend in any hour, every replica together, in the prices file's currency
    #[arg(long, env = "OTP_SPEND_LIMIT_PER_HOUR", value_parser = Micros::parse)]
    pub spend_limit_per_hour: Option<Micros>,
    /// Most estimated spend in any 24 h, every replica together, in the prices file's currency
    #[arg(long, env = "OTP_SPEND_LIMIT_PER_DAY", value_parser = Micros::parse)]
    pub spend_limit_per_day: Option<Micros>,
    /// Most estimated spend in any 24 h by one authenticated caller, in the prices file's currency
    #[arg(long, env = "OTP_CALLER_SPEND_LIMIT_PER_DAY", value_parser = Micros::parse)]
    pub caller_spend_limit_per_day: Option<Micros>,
}

/// The spend settings, or `None` without a prices file; orders `sms`'s
/// `cheapest:` routes (every channel's) by their channel's prices.
pub(super) fn spend_settings(
    vars: &SpendVars,
    sms: &mut SmsConfig,
) -> Result<Option<SpendSettings>, ConfigError> {
    let caps = SpendCaps {
        per_hour: vars.spend_limit_per_hour,
        per_day: vars.spend_limit_per_day,
        caller_per_day: vars.caller_spend_limit_per_day,
    };
    for (cap, limit) in caps.in_force() {
        if limit == Micros::ZERO {
            return Err(ConfigError::new(
                cap.variable(),
                "must be more than 0 (unset it for no cap)",
            ));
        }
    }
    let Some(path) = vars.prices_file.as_deref() else {
        if let Some((cap, _)) = caps.in_force().next() {
            return Err(ConfigError::new(
                cap.variable(),
                "needs OTP_PRICES_FILE: a cap in money needs the price of each send",
            ));
        }
        if let Some(channel) = cheapest_channel(sms) {
            return Err(ConfigError::new(
                channel.routes_var(),
                "a `cheapest:` route needs OTP_PRICES_FILE to order its providers by price",
            ));
        }
        return Ok(None);
    };
    let prices = prices_file(path)?;
    for provider in sms.routed_providers() {
        if !prices.lists(provider) {
            return Err(ConfigError::new(
                "OTP_PRICES_FILE",
                format!(
                    "`{path}` has no prices for provider `{provider}`, which the {} routes \
                     send through; add a `[{provider}]` table with a `\"*\"` row",
                    provider.channel()
                ),
            ));
        }
        let channel = provider.channel();
        if !prices.prices_channel(provider, channel) {
            return Err(ConfigError::new(
                "OTP_PRICES_FILE",
                format!(
                    "`{path}` gives provider `{provider}` no {channel} price, and {channel} is \
                     what it carries: every send through it would be refused (PRICE_UNKNOWN); \
                     add `{channel} = \"…\"` to its `\"*\"` row"
                ),
            ));
        }
    }
    let countries: Vec<String> = prices.countries().map(str::to_owned).collect();
    let by_channel = std::iter::once((Channel::Sms, &mut sms.routes))
        .chain(sms.channel_routes.iter_mut().map(|(c, r)| (*c, r)));
    for (channel, routes) in by_channel {
        routes.order_cheapest_first(
            |provider, region| prices.price(provider, channel, region).map(|p| p.0),
            countries.iter().map(String::as_str),
        );
    }
    Ok(Some(SpendSettings { prices, caps }))
}

/// The first channel with a `cheapest:` route, if any.
fn cheapest_channel(sms: &SmsConfig) -> Option<Channel> {
    std::iter::once((Channel::Sms, &sms.routes))
        .chain(sms.channel_routes.iter().map(|(c, r)| (*c, r)))
        .find(|(_, routes)| routes.has_cheapest())
        .map(|(channel, _)| channel)
}

/// Reads and checks `OTP_PRICES_FILE`.
fn prices_file(path: &str) -> Result<PriceTable, ConfigError> {
    const VAR: &str = "OTP_PRICES_FILE";
    let text = std::fs::read_to_string(path)
        .map_err(|err| ConfigError::new(VAR, format!("cannot read `{path}`: {err}")))?;
    PriceTable::parse(&text).map_err(|why| ConfigError::new(VAR, format!("`{path}` {why}")))
}

#[cfg(test)]
mod tests {
    use crate::{
        config::test_support::{assert_refused, config},
        sms::ProviderName,
        spend::Micros,
    };

    /// A prices file with `contents`, removed when dropped.
    struct PricesFile(std::path::PathBuf);

    impl PricesFile {
        fn new(contents: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("otp-prices-{}-{n}.toml", std::process::id()));
            std::fs::write(&path, contents).expect("temp file written");
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for PricesFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const CONSOLE: &str = "currency = \"USD\"\n[console]\n\"*\" = { sms = \"0.01\" }\n";

    #[test]
    fn a_prices_file_and_caps_are_read_in_the_files_currency() {
        let file = PricesFile::new(CONSOLE);
        let settings = config(&[
            ("OTP_PRICES_FILE", file.path()),
            ("OTP_SPEND_LIMIT_PER_HOUR", "25.50"),
            ("OTP_CALLER_SPEND_LIMIT_PER_DAY", "3"),
        ])
        .expect("valid");
        let spend = settings.spend.expect("spend on");
        assert_eq!(spend.caps.per_hour, Some(Micros(25_500_000)));
        assert_eq!(spend.caps.per_day, None);
        assert_eq!(spend.caps.caller_per_day, Some(Micros(3_000_000)));
        assert!(spend.prices.lists(ProviderName::Console));
        assert!(config(&[]).expect("valid").spend.is_none());
    }

    #[test]
    fn a_provider_priced_only_on_a_channel_it_does_not_carry_is_refused() {
        let file =
            PricesFile::new("currency = \"USD\"\n[console]\n\"*\" = { whatsapp = \"0.01\" }\n");
        assert_refused(
            &[("OTP_PRICES_FILE", file.path())],
            "OTP_PRICES_FILE",
            "gives provider `console` no sms price",
        );
        // A country row pricing the channel is enough: other countries are
        // refused per send (PRICE_UNKNOWN), as documented.
        let us_only = PricesFile::new("currency = \"USD\"\n[console]\nUS = { sms = \"0.01\" }\n");
        config(&[("OTP_PRICES_FILE", us_only.path())]).expect("priced somewhere");
    }

    #[test]
    fn an_unknown_provider_lists_every_provider_the_file_accepts() {
        let file = PricesFile::new("currency = \"USD\"\n[pigeon]\n\"*\" = { sms = 1 }\n");
        let line = assert_refused(
            &[("OTP_PRICES_FILE", file.path())],
            "OTP_PRICES_FILE",
            "unknown provider",
        );
        for provider in ProviderName::ALL {
            assert!(line.contains(provider.as_str()), "{provider}: {line}");
        }
    }

    #[test]
    fn a_bad_cap_shows_its_value_once() {
        for (value, why) in [
            ("-1", "is negative"),
            ("1e3", "is not a decimal amount such as `0.0079`"),
            ("5,00", "is not a decimal amount such as `0.0079`"),
        ] {
            let line = assert_refused(
                &[("OTP_SPEND_LIMIT_PER_HOUR", value)],
                "OTP_SPEND_LIMIT_PER_HOUR",
                why,
            );
            assert_eq!(
                line,
                format!("OTP_SPEND_LIMIT_PER_HOUR: {why} (got `{value}`)")
            );
        }
    }

    #[test]
    fn bad_prices_or_caps_stop_startup_with_one_line_naming_the_entry() {
        let negative = PricesFile::new("currency = \"USD\"\n[console]\nUS = { sms = -1 }\n");
        assert_refused(
            &[("OTP_PRICES_FILE", negative.path())],
            "OTP_PRICES_FILE",
            "entry `console.US.sms` is negative (`-1`)",
        );
        let currency = PricesFile::new("currency = \"DOLLARS\"\n[console]\n\"*\" = { sms = 1 }\n");
        assert_refused(
            &[("OTP_PRICES_FILE", currency.path())],
            "OTP_PRICES_FILE",
            "ISO 4217",
        );
        let provider =
            PricesFile::new("currency = \"USD\"\n[carrier-pigeon]\n\"*\" = { sms = 1 }\n");
        assert_refused(
            &[("OTP_PRICES_FILE", provider.path())],
            "OTP_PRICES_FILE",
            "entry `carrier-pigeon`: unknown provider",
        );
        let other = PricesFile::new("currency = \"USD\"\n[twilio]\n\"*\" = { sms = 1 }\n");
        assert_refused(
            &[("OTP_PRICES_FILE", other.path())],
            "OTP_PRICES_FILE",
            "no prices for provider `console`",
        );
        assert_refused(
            &[("OTP_PRICES_FILE", "/nonexistent/prices.toml")],
            "OTP_PRICES_FILE",
            "cannot read",
        );
        assert_refused(
            &[("OTP_SPEND_LIMIT_PER_DAY", "10")],
            "OTP_SPEND_LIMIT_PER_DAY",
            "needs OTP_PRICES_FILE",
        );
        let file = PricesFile::new(CONSOLE);
        assert_refused(
            &[
                ("OTP_PRICES_FILE", file.path()),
                ("OTP_SPEND_LIMIT_PER_HOUR", "0"),
            ],
            "OTP_SPEND_LIMIT_PER_HOUR",
            "more than 0",
        );
        assert_refused(
            &[
                ("OTP_PRICES_FILE", file.path()),
                ("OTP_SPEND_LIMIT_PER_HOUR", "-5"),
            ],
            "OTP_SPEND_LIMIT_PER_HOUR",
            "negative",
        );
        assert_refused(
            &[("OTP_SMS_ROUTES", "*=cheapest:console")],
            "OTP_SMS_ROUTES",
            "needs OTP_PRICES_FILE",
        );
    }
}
