//! Routes: per destination country an ordered list of providers
//! (`OTP_SMS_ROUTES`), tried in turn. The next provider is asked only when
//! the previous one surely did not deliver; a maybe-delivered failure ends
//! the send, so one send is never two SMS. A route written
//! `cheapest:twilio,vonage` asks its providers cheapest first for each
//! destination country (`cheapest.rs`, by the price table).

mod cheapest;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::Duration,
};

use async_trait::async_trait;
use thiserror::Error;
use tokio::time::Instant;

use super::{
    Accepted, GatewayError, OutgoingSms, SmsGateway,
    provider::{Provider, ProviderName, Turn},
    retry::MIN_TRY,
};

/// Country → ordered providers, with a default (`*`) for every other
/// destination, numbers without a country included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    /// ISO 3166-1 alpha-2 region → providers, first choice first.
    by_region: BTreeMap<String, Vec<ProviderName>>,
    /// For every region without its own route.
    default: Vec<ProviderName>,
    /// The routes marked `cheapest:`: their countries, `*` for the default.
    cheapest: BTreeSet<String>,
    /// The default route ordered cheapest first for each country whose
    /// prices differ from the default row's (a `cheapest:` default only).
    ranked: BTreeMap<String, Vec<ProviderName>>,
}

/// Why `OTP_SMS_ROUTES` was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RouteTableError {
    /// An entry is not `COUNTRIES=providers`.
    #[error("entry `{0}` is not of the form `US,CA=twilio,vonage`")]
    Malformed(String),
    /// Not a country code or `*`.
    #[error("`{0}` is not an ISO 3166-1 alpha-2 country code (e.g. US, IN) or `*`")]
    BadCountry(String),
    /// A country (or `*`) in two entries.
    #[error("`{0}` has more than one route")]
    DuplicateCountry(String),
    /// A name that is not a provider.
    #[error("unknown provider `{0}` (known: console, textbee, twilio, vonage, webhook)")]
    UnknownProvider(String),
    /// A provider twice in one route.
    #[error("route `{0}` names a provider twice")]
    DuplicateProvider(String),
    /// No `*=…` entry.
    #[error("needs a default route for every other country, e.g. `*=twilio`")]
    NoDefault,
}

impl RouteTable {
    /// One provider for every destination (the set-up without `OTP_SMS_ROUTES`).
    pub fn single(provider: ProviderName) -> Self {
        Self {
            by_region: BTreeMap::new(),
            default: vec![provider],
            cheapest: BTreeSet::new(),
            ranked: BTreeMap::new(),
        }
    }

    /// Parses `IN=textbee; US,CA=cheapest:twilio,vonage; *=twilio,vonage`:
    /// entries split by `;`, countries by `,` before the `=`, providers by
    /// `,` after it, optionally after `cheapest:`.
    pub fn parse(raw: &str) -> Result<Self, RouteTableError> {
        let mut by_region = BTreeMap::new();
        let mut default = None;
        let mut cheapest = BTreeSet::new();
        for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (countries, providers) = entry
                .split_once('=')
                .ok_or_else(|| RouteTableError::Malformed(entry.to_owned()))?;
            let (by_price, providers) = match providers.trim().strip_prefix(cheapest::MARKER) {
                Some(providers) => (true, providers),
                None => (false, providers),
            };
            let providers = parse_providers(entry, providers)?;
            for country in countries.split(',').map(str::trim) {
                let slot = if country == "*" {
                    if by_price {
                        cheapest.insert("*".to_owned());
                    }
                    &mut default
                } else {
                    let region = parse_region(country)?;
                    if by_price {
                        cheapest.insert(region.clone());
                    }
                    by_region.entry(region).or_insert(None)
                };
                if slot.replace(providers.clone()).is_some() {
                    return Err(RouteTableError::DuplicateCountry(country.to_owned()));
                }
            }
        }
        let by_region = by_region
            .into_iter()
            .filter_map(|(region, providers)| Some((region, providers?)))
            .collect();
        Ok(Self {
            by_region,
            default: default.ok_or(RouteTableError::NoDefault)?,
            cheapest,
            ranked: BTreeMap::new(),
        })
    }

    /// Every provider some route names.
    pub fn providers(&self) -> BTreeSet<ProviderName> {
        self.by_region
            .values()
            .chain([&self.default])
            .flatten()
            .copied()
            .collect()
    }

    /// The providers for a destination in `region` (`None`: no country).
    /// `region` is asked only when some country has a route of its own: for
    /// a calling code shared by several regions it costs a full parse.
    pub fn route_for<'r>(&self, region: impl FnOnce() -> Option<&'r str>) -> &[ProviderName] {
        if self.by_region.is_empty() && self.ranked.is_empty() {
            return &self.default;
        }
        region()
            .and_then(|region| {
                self.by_region
                    .get(region)
                    .or_else(|| self.ranked.get(region))
            })
            .unwrap_or(&self.default)
    }
}

fn parse_region(raw: &str) -> Result<String, RouteTableError> {
    let upper = raw.to_ascii_uppercase();
    if upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(upper)
    } else {
        Err(RouteTableError::BadCountry(raw.to_owned()))
    }
}

fn parse_providers(entry: &str, raw: &str) -> Result<Vec<ProviderName>, RouteTableError> {
    let mut providers = Vec::new();
    for name in raw.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(RouteTableError::Malformed(entry.to_owned()));
        }
        let provider = name
            .to_ascii_lowercase()
            .parse::<ProviderName>()
            .map_err(|()| RouteTableError::UnknownProvider(name.to_owned()))?;
        if providers.contains(&provider) {
            return Err(RouteTableError::DuplicateProvider(entry.to_owned()));
        }
        providers.push(provider);
    }
    Ok(providers)
}

impl fmt::Display for RouteTable {
    /// The table as `OTP_SMS_ROUTES` would spell it, one country per entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |key: &str, providers: &[ProviderName]| {
            let marker = if self.cheapest.contains(key) {
                cheapest::MARKER
            } else {
                ""
            };
            let names: Vec<_> = providers.iter().map(|p| p.as_str()).collect();
            format!("{marker}{}", names.join(","))
        };
        for (region, providers) in &self.by_region {
            write!(f, "{region}={}; ", list(region, providers))?;
        }
        write!(f, "*={}", list("*", &self.default))
    }
}

/// The gateway the OTP flow sends through: picks the destination's route
/// and asks its providers in turn, all within one send budget.
pub struct SmsRouter {
    routes: RouteTable,
    providers: BTreeMap<ProviderName, Provider>,
    send_timeout: Duration,
}

/// A route names a provider the router was not given (a wiring defect:
/// configuration checks that every routed provider has its settings).
#[derive(Debug, Error)]
#[error("route names provider `{0}`, which is not configured")]
pub struct MissingProvider(pub ProviderName);

impl SmsRouter {
    /// Routes over `providers`; every provider a route names must be among them.
    pub fn new(
        routes: RouteTable,
        providers: Vec<Provider>,
        send_timeout: Duration,
    ) -> Result<Self, MissingProvider> {
        let providers: BTreeMap<_, _> = providers.into_iter().map(|p| (p.name(), p)).collect();
        if let Some(missing) = routes
            .providers()
            .into_iter()
            .find(|name| !providers.contains_key(name))
        {
            return Err(MissingProvider(missing));
        }
        Ok(Self {
            routes,
            providers,
            send_timeout,
        })
    }

    /// The provider called `name`, if configured.
    pub fn provider(&self, name: ProviderName) -> Option<&Provider> {
        self.providers.get(&name)
    }
}

/// Whether the next provider may be asked after `error`: only when this
/// one surely did not deliver and another could do better.
fn may_fail_over(error: &GatewayError) -> bool {
    match error {
        GatewayError::Unavailable(_)
        | GatewayError::Unauthorized(_)
        | GatewayError::Rejected(_) => true,
        // Maybe delivered: a second provider could make it two SMS.
        GatewayError::Uncertain(_) => false,
        // The number itself cannot take SMS.
        GatewayError::Undeliverable(_) => false,
    }
}

#[async_trait]
impl SmsGateway for SmsRouter {
    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<Accepted, GatewayError> {
        let deadline = Instant::now() + self.send_timeout;
        let mut last_error = None;
        for &name in self.routes.route_for(|| sms.to.region()) {
            let Some(provider) = self.providers.get(&name) else {
                continue; // `new` refused routes to missing providers
            };
            if last_error.is_some() && Instant::now() + MIN_TRY > deadline {
                tracing::warn!(provider = name.as_str(), "no time left to fail over");
                break;
            }
            match provider.take_turn(sms, deadline).await {
                Turn::Skipped => {}
                Turn::Answered(Ok(message_id)) => {
                    return Ok(Accepted {
                        provider: name.as_str(),
                        message_id,
                    });
                }
                Turn::Answered(Err(error)) if may_fail_over(&error) => last_error = Some(error),
                Turn::Answered(Err(error)) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            GatewayError::Unavailable(
                "every provider of the route has an open circuit; none was asked".into(),
            )
        }))
    }

    /// The one provider when every country goes to it alone, else `routes`
    /// (the log and metrics name each provider a failed send was tried at).
    fn provider(&self) -> &'static str {
        match self
            .routes
            .providers()
            .into_iter()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [only] if self.routes == RouteTable::single(*only) => only.as_str(),
            _ => "routes",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ProviderName::{TextBee, Twilio, Vonage, Webhook};

    #[test]
    fn routes_are_read_per_country_with_a_default() {
        let table =
            RouteTable::parse("IN=textbee; us, ca = twilio ; *=twilio,vonage;").expect("valid");
        assert_eq!(table.route_for(|| Some("IN")), [TextBee]);
        assert_eq!(table.route_for(|| Some("US")), [Twilio]);
        assert_eq!(table.route_for(|| Some("CA")), [Twilio]);
        assert_eq!(table.route_for(|| Some("GB")), [Twilio, Vonage]);
        assert_eq!(table.route_for(|| None), [Twilio, Vonage]);
        assert_eq!(table.providers(), BTreeSet::from([TextBee, Twilio, Vonage]));
        assert_eq!(
            table.to_string(),
            "CA=twilio; IN=textbee; US=twilio; *=twilio,vonage"
        );
        assert_eq!(
            RouteTable::single(Webhook).route_for(|| Some("IN")),
            [Webhook]
        );
    }

    #[test]
    fn a_table_without_country_routes_never_asks_the_region() {
        let asked = std::cell::Cell::new(false);
        let table = RouteTable::single(Webhook);
        let route = table.route_for(|| {
            asked.set(true);
            Some("IN")
        });
        assert_eq!(route, [Webhook]);
        assert!(!asked.get(), "the region was looked up for a single route");
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        for (raw, expected) in [
            ("US=twilio", RouteTableError::NoDefault),
            ("", RouteTableError::NoDefault),
            ("twilio", RouteTableError::Malformed("twilio".into())),
            ("US=; *=twilio", RouteTableError::Malformed("US=".into())),
            (
                "USA=twilio; *=twilio",
                RouteTableError::BadCountry("USA".into()),
            ),
            (
                "US=twilio; us=vonage; *=twilio",
                RouteTableError::DuplicateCountry("us".into()),
            ),
            (
                "*=twilio; *=vonage",
                RouteTableError::DuplicateCountry("*".into()),
            ),
            (
                "*=pigeon",
                RouteTableError::UnknownProvider("pigeon".into()),
            ),
            (
                "*=twilio,twilio",
                RouteTableError::DuplicateProvider("*=twilio,twilio".into()),
            ),
        ] {
            assert_eq!(RouteTable::parse(raw), Err(expected), "{raw}");
        }
    }
}
