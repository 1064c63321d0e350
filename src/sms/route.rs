//! Route tables: per destination country an ordered list of providers
//! (`OTP_SMS_ROUTES`; one table per channel, `OTP_WHATSAPP_ROUTES` and
//! `OTP_VOICE_ROUTES` alike), tried in turn by the router (`router.rs`,
//! whose provider loop asks `route_for`). A route written
//! `cheapest:twilio,vonage` is ordered cheapest first for each destination
//! country at startup (`cheapest.rs`, by the price table's column for the
//! table's channel), so the router's loop asks the cheapest healthy
//! provider first and fails over in that order.

mod cheapest;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use thiserror::Error;

use super::provider::ProviderName;
use crate::domain::{RegionError, parse_region};

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
    /// Not a region of the numbering plan (`UK`, `USA`) nor `*`.
    #[error("{0}, nor `*`")]
    BadCountry(RegionError),
    /// A country (or `*`) in two entries.
    #[error("`{0}` has more than one route")]
    DuplicateCountry(String),
    /// A name that is not a provider.
    #[error("unknown provider `{0}` (known: {known})", known = ProviderName::list())]
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
                    let region = parse_region(country).map_err(RouteTableError::BadCountry)?;
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
                RouteTableError::BadCountry(RegionError { code: "USA".into() }),
            ),
            (
                "UK=twilio; *=twilio",
                RouteTableError::BadCountry(RegionError { code: "UK".into() }),
            ),
            (
                "US,EU=twilio; *=twilio",
                RouteTableError::BadCountry(RegionError { code: "EU".into() }),
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
