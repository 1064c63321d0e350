//! The spend caps' part in sending: estimate the send's price before
//! anything is counted (a destination without a price is refused), hand the
//! store the windows to reserve it in (a step of the send's one store call,
//! `SendPlan::spend`: on one Redis server or Sentinel the same EVALSHA as
//! the counts and the code), and once the gateway answered settle it: the
//! provider that took the message keeps its own price on the channel that
//! carried it (an SMS its segments, a WhatsApp message its price per
//! message, a call its price per minute) and the rest of the reservation is
//! given back; a sure non-delivery gives all of it back; a maybe-delivered
//! send keeps it (the money may be spent). Metrics and the audit events
//! carry the estimate.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    domain::PhoneNumber,
    error::Error,
    metrics,
    sms::{Accepted, Channel, ProviderName, RouteTable},
    spend::{Currency, Estimate, Micros, Pricing, SpendCap, SpendCaps, SpendSettings},
    store::{OtpStore, SpendLedger, SpendRefusal, SpendReservation, SpendWindow},
};

/// The `provider` label of spend whose carrier is not known (a
/// maybe-delivered send, or a gateway that is not a named provider).
const UNKNOWN_PROVIDER: &str = "unknown";

/// Prices, caps and the store the caps are kept in.
pub(super) struct SpendGuard {
    pricing: Pricing,
    caps: SpendCaps,
    store: Arc<dyn OtpStore>,
}

/// A send's estimate and, when a cap is on, what it reserved.
pub(super) struct ReservedSpend {
    pub(super) estimate: Estimate,
    reservation: Option<SpendReservation>,
}

impl SpendGuard {
    /// Estimates over each channel's `routes` at `settings`' prices,
    /// capped in `store`.
    pub(super) fn new(
        settings: SpendSettings,
        routes: BTreeMap<Channel, RouteTable>,
        store: Arc<dyn OtpStore>,
    ) -> Self {
        metrics::spend_caps(
            &settings
                .caps
                .in_force()
                .map(|(cap, limit)| (cap.as_str(), limit.0))
                .collect::<Vec<_>>(),
            &SpendCap::ALL.map(SpendCap::as_str),
        );
        Self {
            pricing: Pricing::new(settings.prices, routes),
            caps: settings.caps,
            store,
        }
    }

    /// The currency of every amount.
    pub(super) fn currency(&self) -> Currency {
        self.pricing.prices().currency()
    }

    /// The price of sending to `phone` on the first of `channels` or,
    /// falling through, the ones after it (`text` prices an SMS by its
    /// segments); refused when a provider of one of their routes has no
    /// price there.
    pub(super) fn estimate(
        &self,
        phone: &PhoneNumber,
        text: &str,
        channels: &[Channel],
    ) -> Result<Estimate, Error> {
        self.pricing
            .estimate(phone, text, channels)
            .map_err(Error::PriceUnknown)
    }

    /// The windows a send by `caller` is reserved in: the service's hour
    /// and day and the caller's day, each if its cap is on (none: no spend
    /// step, no store work).
    pub(super) fn windows(&self, caller: Option<&str>) -> Vec<SpendWindow> {
        self.caps
            .in_force()
            .filter_map(|(cap, limit)| {
                let ledger = match cap {
                    SpendCap::PerHour | SpendCap::PerDay => SpendLedger::Service,
                    SpendCap::CallerPerDay => SpendLedger::Caller(caller?.to_owned()),
                };
                Some(SpendWindow {
                    cap,
                    ledger,
                    period: cap.period(),
                    limit,
                })
            })
            .collect()
    }

    /// What a stored send reserved for `estimate` (`None`: no cap in force).
    pub(super) fn reserved(
        estimate: Estimate,
        reservation: Option<SpendReservation>,
    ) -> ReservedSpend {
        ReservedSpend {
            estimate,
            reservation,
        }
    }

    /// The send's spend step was refused by `refusals`' caps: counted in
    /// the metrics, answered as the error.
    pub(super) fn refused(refusals: Vec<SpendRefusal>) -> Error {
        for refusal in &refusals {
            metrics::spend_refused(refusal.cap.as_str());
        }
        Error::SpendLimited { refusals }
    }

    /// `accepted.provider` took the message on `accepted.channel`: its
    /// price there is the spend; the rest of the reservation is given back.
    /// Returns the spend.
    pub(super) async fn settle(
        &self,
        reserved: &ReservedSpend,
        phone: &PhoneNumber,
        accepted: &Accepted,
    ) -> Micros {
        let channel = accepted.channel;
        let carrier = accepted.provider.parse::<ProviderName>().ok();
        let spent = reserved.estimate.carried_by(channel, carrier);
        let label = carrier.map_or(UNKNOWN_PROVIDER, ProviderName::as_str);
        self.count(phone, label, channel, spent);
        self.give_back(reserved, reserved.estimate.overestimate(channel, carrier))
            .await;
        spent
    }

    /// The send may have gone out: the whole reservation stays spent,
    /// labelled with the channel asked for (which one answered is unknown).
    pub(super) fn keep_uncertain(&self, reserved: &ReservedSpend, phone: &PhoneNumber) {
        let estimate = &reserved.estimate;
        self.count(phone, UNKNOWN_PROVIDER, estimate.channel, estimate.reserved);
    }

    /// The send surely did not go out: all of it is given back.
    pub(super) async fn refund(&self, reserved: &ReservedSpend) {
        self.give_back(reserved, reserved.estimate.reserved).await;
    }

    /// The spend and the send in the per-country metrics. Only with a
    /// prices file, which remembers +1 ranges' regions (`RegionMemo`): the
    /// library's answer costs a numbering-plan parse for them.
    fn count(&self, phone: &PhoneNumber, provider: &'static str, channel: Channel, spent: Micros) {
        let country = self.pricing.region(phone);
        metrics::spend_estimated(country, provider, channel.as_str(), spent.0);
        metrics::country_send(country);
    }

    /// An approval in the per-country metrics (see `count`).
    pub(super) fn count_approval(&self, phone: &PhoneNumber) {
        metrics::country_approval(self.pricing.region(phone));
    }

    /// Gives `amount` back to every window; a failure is logged, never
    /// returned: over-counting spend errs on the safe side.
    async fn give_back(&self, reserved: &ReservedSpend, amount: Micros) {
        let Some(reservation) = &reserved.reservation else {
            return;
        };
        if amount == Micros::ZERO {
            return;
        }
        let refund = self.store.refund_spend(reservation, amount);
        if let Err(err) = metrics::timed_store("refund_spend", refund).await {
            tracing::warn!(error = %err, "could not give back a send's reserved spend");
        }
    }
}
