//! "Cheapest healthy provider first": a route marked `cheapest:` in
//! `OTP_SMS_ROUTES` has its providers ordered by their price per segment to
//! each destination country (the price table's, handed in as a function so
//! `sms` knows nothing of prices), cheapest first, ties in the order
//! written. A provider whose circuit is open is passed by as on every route,
//! so the first one asked is the cheapest healthy one, and a sure failure
//! fails over to the next. Routes without the marker keep their order.

use std::collections::BTreeSet;

use super::{ProviderName, RouteTable};

/// What marks a route, before its providers.
pub(super) const MARKER: &str = "cheapest:";

impl RouteTable {
    /// Whether some route is marked `cheapest:` (it needs a price table).
    pub fn has_cheapest(&self) -> bool {
        !self.cheapest.is_empty()
    }

    /// Orders each `cheapest:` route by `price(provider, region)` (a
    /// provider without a price goes last): a country's own route by its
    /// country's prices, and a `cheapest:` default route by the default
    /// prices (`region` `None`) and, for each of `countries` without a
    /// route of its own, by that country's.
    pub fn order_cheapest_first<'c>(
        &mut self,
        price: impl Fn(ProviderName, Option<&str>) -> Option<u64>,
        countries: impl IntoIterator<Item = &'c str>,
    ) {
        let rank = |providers: &[ProviderName], region: Option<&str>| {
            let mut ordered = providers.to_vec();
            // Stable: equal prices keep the written order.
            ordered.sort_by_key(|provider| price(*provider, region).unwrap_or(u64::MAX));
            ordered
        };
        for (region, providers) in &mut self.by_region {
            if self.cheapest.contains(region) {
                *providers = rank(providers, Some(region));
            }
        }
        if !self.cheapest.contains("*") {
            return;
        }
        let countries: BTreeSet<&str> = countries.into_iter().collect();
        let default = rank(&self.default, None);
        for country in countries {
            if self.by_region.contains_key(country) {
                continue;
            }
            let ordered = rank(&self.default, Some(country));
            if ordered != default {
                self.ranked.insert(country.to_owned(), ordered);
            }
        }
        self.default = default;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ProviderName::{TextBee, Twilio, Vonage};

    /// Vonage is cheaper in GB, Twilio everywhere else.
    fn price(provider: ProviderName, region: Option<&str>) -> Option<u64> {
        match (provider, region) {
            (Vonage, Some("GB")) => Some(1),
            (Vonage, _) => Some(9),
            (Twilio, _) => Some(5),
            _ => None,
        }
    }

    #[test]
    fn a_cheapest_route_asks_the_cheaper_provider_first_per_country() {
        let mut table = RouteTable::parse(
            "US=cheapest:vonage,twilio; IN=vonage,twilio; *=cheapest:vonage,textbee,twilio",
        )
        .expect("valid");
        assert!(table.has_cheapest());
        table.order_cheapest_first(price, ["GB", "US", "FR"]);
        assert_eq!(table.route_for(|| Some("US")), [Twilio, Vonage]);
        assert_eq!(table.route_for(|| Some("IN")), [Vonage, Twilio], "unmarked");
        assert_eq!(table.route_for(|| Some("GB")), [Vonage, Twilio, TextBee]);
        assert_eq!(table.route_for(|| Some("FR")), [Twilio, Vonage, TextBee]);
        assert_eq!(table.route_for(|| None), [Twilio, Vonage, TextBee]);
        assert_eq!(
            table.to_string(),
            "IN=vonage,twilio; US=cheapest:twilio,vonage; *=cheapest:twilio,vonage,textbee"
        );
    }

    #[test]
    fn routes_without_the_marker_are_left_as_written() {
        let mut table = RouteTable::parse("*=vonage,twilio").expect("valid");
        assert!(!table.has_cheapest());
        table.order_cheapest_first(price, ["GB"]);
        assert_eq!(table.route_for(|| Some("GB")), [Vonage, Twilio]);
    }
}
