//! A send's estimated price: the segments of the rendered text (GSM-7 or
//! UCS-2, as `sms::count_segments` counts them) × the price per segment of
//! the provider that carries it, to the destination's country.
//!
//! Which provider carries it is known only afterwards (a route fails over),
//! so the amount reserved against the caps beforehand is the **highest**
//! price among the route's providers: a failover never spends more than was
//! reserved. Once a provider took the message, the difference to its own
//! price is given back (`Estimate::overestimate`).

use thiserror::Error;

use super::{Channel, Micros, PriceTable, RegionMemo};
use crate::{
    domain::PhoneNumber,
    sms::{ProviderName, RouteTable, count_segments},
};

/// Prices and routes: what the flow estimates a send with.
#[derive(Debug)]
pub struct Pricing {
    prices: PriceTable,
    routes: RouteTable,
    /// Destinations' countries, for the price rows and the metrics.
    regions: RegionMemo,
}

/// What one send is estimated to cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// The channel it goes out on.
    pub channel: Channel,
    /// Billed units: SMS segments.
    pub units: u64,
    /// Reserved against the caps: the route's highest price × `units`.
    pub reserved: Micros,
    /// Each provider of the route with its price for this send (× `units`).
    by_provider: Vec<(ProviderName, Micros)>,
}

impl Estimate {
    /// What the send costs when `provider` carried it (`None`: a provider
    /// outside the route, e.g. a test's gateway: the reserved amount).
    pub fn carried_by(&self, provider: Option<ProviderName>) -> Micros {
        provider
            .and_then(|name| self.by_provider.iter().find(|(p, _)| *p == name))
            .map_or(self.reserved, |(_, price)| *price)
    }

    /// How much was reserved beyond what `provider`'s price comes to.
    pub fn overestimate(&self, provider: Option<ProviderName>) -> Micros {
        Micros(self.reserved.0.saturating_sub(self.carried_by(provider).0))
    }
}

/// A provider of the destination's route has no price there (no row for
/// the country and no default row): the send is refused, never sent at an
/// unknown price.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("no price for provider `{provider}` to region {region}")]
pub struct PriceUnknown {
    /// The provider without a price.
    pub provider: ProviderName,
    /// The destination's region, or `unknown`.
    pub region: String,
}

impl Pricing {
    /// Estimates sends over `routes` at `prices`.
    pub fn new(prices: PriceTable, routes: RouteTable) -> Self {
        Self {
            prices,
            routes,
            regions: RegionMemo::default(),
        }
    }

    /// The region of `phone` (ISO 3166-1 alpha-2), as its price row and the
    /// per-country metrics name it.
    pub fn region<'p>(&self, phone: &'p PhoneNumber) -> Option<&'p str> {
        self.regions.region(phone)
    }

    /// The price table.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// The estimate for texting `text` to `to`.
    pub fn estimate_sms(&self, to: &PhoneNumber, text: &str) -> Result<Estimate, PriceUnknown> {
        let units = count_segments(text).count as u64;
        let region = self.region(to);
        let route = self.routes.route_for(|| region);
        let mut by_provider = Vec::with_capacity(route.len());
        for &provider in route {
            let price = self
                .prices
                .price(provider, Channel::Sms, region)
                .ok_or_else(|| PriceUnknown {
                    provider,
                    region: region.unwrap_or("unknown").to_owned(),
                })?;
            by_provider.push((provider, price.times(units)));
        }
        let reserved = by_provider
            .iter()
            .map(|(_, price)| *price)
            .max()
            .unwrap_or(Micros::ZERO);
        Ok(Estimate {
            channel: Channel::Sms,
            units,
            reserved,
            by_provider,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing(routes: &str) -> Pricing {
        let prices = PriceTable::parse(
            r#"
            currency = "EUR"
            [twilio]
            "*" = { sms = "0.05" }
            US = { sms = "0.01" }
            [vonage]
            US = { sms = "0.02" }
            "#,
        )
        .expect("valid");
        Pricing::new(prices, RouteTable::parse(routes).expect("valid"))
    }

    fn phone(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).expect("valid")
    }

    #[test]
    fn segments_times_the_routes_highest_price_is_reserved() {
        let pricing = pricing("US=twilio,vonage; *=twilio");
        let us = phone("+14155550123");
        let one = pricing
            .estimate_sms(&us, "Your code is 123456")
            .expect("priced");
        assert_eq!((one.units, one.reserved), (1, Micros(20_000)));
        assert_eq!(one.carried_by(Some(ProviderName::Twilio)), Micros(10_000));
        assert_eq!(one.overestimate(Some(ProviderName::Twilio)), Micros(10_000));
        assert_eq!(one.overestimate(Some(ProviderName::Vonage)), Micros::ZERO);
        assert_eq!(one.carried_by(None), Micros(20_000));
        // 161 GSM-7 characters: two segments (153 each).
        let long = pricing.estimate_sms(&us, &"a".repeat(161)).expect("priced");
        assert_eq!((long.units, long.reserved), (2, Micros(40_000)));
        // 71 UCS-2 characters: two segments (67 each).
        let ucs2 = pricing
            .estimate_sms(&us, &"é€ж".repeat(24)[..])
            .expect("priced");
        assert_eq!(ucs2.units, 2);
        // Elsewhere the default row.
        let gb = pricing
            .estimate_sms(&phone("+447400123456"), "x")
            .expect("priced");
        assert_eq!(gb.reserved, Micros(50_000));
    }

    #[test]
    fn a_route_provider_without_a_price_there_refuses_the_estimate() {
        let pricing = pricing("*=twilio,vonage");
        let refused = pricing
            .estimate_sms(&phone("+447400123456"), "x")
            .expect_err("vonage has no GB or default row");
        assert_eq!(refused.provider, ProviderName::Vonage);
        assert_eq!(refused.region, "GB");
    }
}
