//! A send's estimated price, by the channel that carries it: an SMS is the
//! segments of the rendered text (GSM-7 or UCS-2, as `sms::count_segments`
//! counts them) × the provider's price per segment; a WhatsApp message is
//! one message at the provider's price per message; a voice call is
//! [`VOICE_CALL_MINUTES`] minute(s) at the provider's price per minute. The
//! provider is one of the channel's route for the destination's country.
//!
//! Which channel and provider carry it is known only afterwards (a route
//! fails over, a channel falls through to the next of `OTP_CHANNEL_FALLBACK`),
//! so the amount reserved against the caps beforehand is the **highest**
//! price among every provider of every channel the send may use: a failover
//! or a fall-through never spends more than was reserved. Once a provider
//! took the message, the difference to its own price on its channel is given
//! back (`Estimate::overestimate`).

use std::collections::BTreeMap;

use thiserror::Error;

use super::{Channel, Micros, PriceTable, RegionMemo};
use crate::{
    domain::PhoneNumber,
    sms::{ProviderName, RouteTable, count_segments},
};

/// The minutes a voice call is priced at: one. The call says the code
/// twice, digit by digit with a pause (`sms/twilio_voice.rs`), well under
/// a minute, and providers bill voice per started minute; an operator
/// whose spoken template runs longer should raise the `voice` price to
/// cover it.
pub const VOICE_CALL_MINUTES: u64 = 1;

/// Prices and routes: what the flow estimates a send with.
#[derive(Debug)]
pub struct Pricing {
    prices: PriceTable,
    /// Per channel its route table (SMS and every other channel set up).
    routes: BTreeMap<Channel, RouteTable>,
    /// Destinations' countries, for the price rows and the metrics.
    regions: RegionMemo,
}

/// What one send is estimated to cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// The channel asked for (the label of spend whose carrier is not known).
    pub channel: Channel,
    /// Reserved against the caps: the highest price of every provider of
    /// every channel the send may use.
    pub reserved: Micros,
    /// Each (channel, provider) the send may go out through, with its
    /// price for this send (× its billed units: segments, 1 message, minutes).
    by_carrier: Vec<(Channel, ProviderName, Micros)>,
}

impl Estimate {
    /// What the send costs when `provider` carried it on `channel`
    /// (`None` or a provider outside the routes, e.g. a test's gateway:
    /// the reserved amount).
    pub fn carried_by(&self, channel: Channel, provider: Option<ProviderName>) -> Micros {
        provider
            .and_then(|name| {
                self.by_carrier
                    .iter()
                    .find(|(c, p, _)| *c == channel && *p == name)
            })
            .map_or(self.reserved, |(_, _, price)| *price)
    }

    /// How much was reserved beyond what `provider`'s price on `channel`
    /// comes to.
    pub fn overestimate(&self, channel: Channel, provider: Option<ProviderName>) -> Micros {
        Micros(
            self.reserved
                .0
                .saturating_sub(self.carried_by(channel, provider).0),
        )
    }
}

/// A provider of the destination's route has no price there (no row for
/// the country and no default row): the send is refused, never sent at an
/// unknown price.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("no {channel} price for provider `{provider}` to region {region}")]
pub struct PriceUnknown {
    /// The provider without a price.
    pub provider: ProviderName,
    /// The channel it has no price on.
    pub channel: Channel,
    /// The destination's region, or `unknown`.
    pub region: String,
}

impl Pricing {
    /// Estimates sends over each channel's `routes` at `prices`.
    pub fn new(prices: PriceTable, routes: BTreeMap<Channel, RouteTable>) -> Self {
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

    /// The estimate for sending to `to` on the first of `channels` and,
    /// should it surely not deliver, on the ones after it (the channel's
    /// fallback); `text` is the SMS text (its segments price an SMS). A
    /// channel without routes is passed by (the router cannot use it).
    pub fn estimate(
        &self,
        to: &PhoneNumber,
        text: &str,
        channels: &[Channel],
    ) -> Result<Estimate, PriceUnknown> {
        let region = self.region(to);
        let mut by_carrier = Vec::new();
        for &channel in channels {
            let Some(routes) = self.routes.get(&channel) else {
                continue;
            };
            let units = match channel {
                Channel::Sms => count_segments(text).count as u64,
                Channel::WhatsApp => 1,
                Channel::Voice => VOICE_CALL_MINUTES,
            };
            for &provider in routes.route_for(|| region) {
                let price = self
                    .prices
                    .price(provider, channel, region)
                    .ok_or_else(|| PriceUnknown {
                        provider,
                        channel,
                        region: region.unwrap_or("unknown").to_owned(),
                    })?;
                by_carrier.push((channel, provider, price.times(units)));
            }
        }
        let reserved = by_carrier
            .iter()
            .map(|(_, _, price)| *price)
            .max()
            .unwrap_or(Micros::ZERO);
        Ok(Estimate {
            channel: channels.first().copied().unwrap_or_default(),
            reserved,
            by_carrier,
        })
    }

    /// The estimate for texting `text` to `to` (SMS only, no fallback).
    pub fn estimate_sms(&self, to: &PhoneNumber, text: &str) -> Result<Estimate, PriceUnknown> {
        self.estimate(to, text, &[Channel::Sms])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Channel::{Sms, Voice, WhatsApp};
    use ProviderName::{Twilio, TwilioVoice, TwilioWhatsApp, Vonage};

    fn pricing(routes: &str) -> Pricing {
        pricing_on(&[(Sms, routes)])
    }

    fn pricing_on(routes: &[(Channel, &str)]) -> Pricing {
        let prices = PriceTable::parse(
            r#"
            currency = "EUR"
            [twilio]
            "*" = { sms = "0.05" }
            US = { sms = "0.01" }
            [vonage]
            US = { sms = "0.02" }
            [whatsapp_cloud]
            "*" = { whatsapp = "0.03" }
            [twilio_whatsapp]
            "*" = { whatsapp = "0.004" }
            [twilio_voice]
            "*" = { voice = "0.10" }
            "#,
        )
        .expect("valid");
        let routes = routes
            .iter()
            .map(|(channel, raw)| (*channel, RouteTable::parse(raw).expect("valid")))
            .collect();
        Pricing::new(prices, routes)
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
        assert_eq!(one.reserved, Micros(20_000));
        assert_eq!(one.carried_by(Sms, Some(Twilio)), Micros(10_000));
        assert_eq!(one.overestimate(Sms, Some(Twilio)), Micros(10_000));
        assert_eq!(one.overestimate(Sms, Some(Vonage)), Micros::ZERO);
        assert_eq!(one.carried_by(Sms, None), Micros(20_000));
        // 161 GSM-7 characters: two segments (153 each).
        let long = pricing.estimate_sms(&us, &"a".repeat(161)).expect("priced");
        assert_eq!(long.reserved, Micros(40_000));
        // 71 UCS-2 characters: two segments (67 each), at 0.02 each.
        let ucs2 = pricing
            .estimate_sms(&us, &"é€ж".repeat(24)[..])
            .expect("priced");
        assert_eq!(ucs2.reserved, Micros(40_000));
        // Elsewhere the default row.
        let gb = pricing
            .estimate_sms(&phone("+447400123456"), "x")
            .expect("priced");
        assert_eq!(gb.reserved, Micros(50_000));
    }

    #[test]
    fn whatsapp_is_one_message_and_voice_one_minute_whatever_the_text() {
        let pricing = pricing_on(&[
            (Sms, "*=twilio"),
            (WhatsApp, "*=whatsapp_cloud"),
            (Voice, "*=twilio_voice"),
        ]);
        let us = phone("+14155550123");
        let long = "a".repeat(400); // three SMS segments
        let whatsapp = pricing.estimate(&us, &long, &[WhatsApp]).expect("priced");
        assert_eq!(whatsapp.reserved, Micros(30_000));
        assert_eq!(whatsapp.channel, WhatsApp);
        let voice = pricing.estimate(&us, &long, &[Voice]).expect("priced");
        assert_eq!(voice.reserved, Micros(100_000 * VOICE_CALL_MINUTES));
        assert_eq!(voice.carried_by(Voice, Some(TwilioVoice)), voice.reserved);
    }

    #[test]
    fn a_fallback_reserves_the_dearest_channel_and_settles_at_the_carriers() {
        let pricing = pricing_on(&[
            (Sms, "*=twilio"),
            (WhatsApp, "*=twilio_whatsapp,whatsapp_cloud"),
        ]);
        let us = phone("+14155550123");
        // whatsapp>sms: max(0.004, 0.03, 3 segments × 0.01).
        let long = "a".repeat(400);
        let estimate = pricing
            .estimate(&us, &long, &[WhatsApp, Sms])
            .expect("priced");
        assert_eq!(estimate.reserved, Micros(30_000));
        assert_eq!(
            estimate.carried_by(WhatsApp, Some(TwilioWhatsApp)),
            Micros(4_000)
        );
        assert_eq!(estimate.carried_by(Sms, Some(Twilio)), Micros(30_000));
        assert_eq!(estimate.overestimate(Sms, Some(Twilio)), Micros::ZERO);
        // A provider on another channel than the one that carried it: the reservation.
        assert_eq!(
            estimate.carried_by(Sms, Some(TwilioWhatsApp)),
            Micros(30_000)
        );
        // One SMS segment now costs less than the dearest WhatsApp provider.
        let short = pricing
            .estimate(&us, "x", &[WhatsApp, Sms])
            .expect("priced");
        assert_eq!(short.reserved, Micros(30_000));
        assert_eq!(short.overestimate(Sms, Some(Twilio)), Micros(20_000));
    }

    #[test]
    fn a_route_provider_without_a_price_there_refuses_the_estimate() {
        let pricing = pricing("*=twilio,vonage");
        let refused = pricing
            .estimate_sms(&phone("+447400123456"), "x")
            .expect_err("vonage has no GB or default row");
        assert_eq!(refused.provider, ProviderName::Vonage);
        assert_eq!(refused.region, "GB");
        // A provider priced for SMS only has no WhatsApp price.
        let pricing = pricing_on(&[(Sms, "*=twilio"), (WhatsApp, "*=twilio")]);
        let us = phone("+14155550123");
        assert!(pricing.estimate(&us, "x", &[Sms]).is_ok());
        let refused = pricing
            .estimate(&us, "x", &[Sms, WhatsApp])
            .expect_err("twilio has no whatsapp column");
        assert_eq!((refused.provider, refused.channel), (Twilio, WhatsApp));
    }
}
