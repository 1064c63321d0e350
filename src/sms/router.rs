//! The router: per channel the destination's route, its providers asked in
//! turn, and, when the channel surely did not deliver, the next channel of
//! the fallback (`OTP_CHANNEL_FALLBACK`), all within one send budget. The
//! next provider or channel is asked only when the previous one surely did
//! not deliver; a maybe-delivered failure ends the send, so one send is
//! never two messages.

use std::{collections::BTreeMap, iter, time::Duration};

use async_trait::async_trait;
use thiserror::Error;
use tokio::time::Instant;

use super::{
    Accepted, Channel, ChannelFallback, GatewayError, OutgoingSms, RouteTable, SmsGateway,
    provider::{Provider, ProviderName, Turn},
    retry::MIN_TRY,
};
use crate::metrics;

/// The gateway the OTP flow sends through: picks the channel's route for
/// the destination and asks its providers in turn, then the fallback's
/// next channel, all within one send budget.
pub struct SmsRouter {
    /// Per channel its route table; a channel without one is not set up.
    routes: BTreeMap<Channel, RouteTable>,
    fallback: ChannelFallback,
    providers: BTreeMap<ProviderName, Provider>,
    send_timeout: Duration,
}

/// A route names a provider the router was not given (a wiring defect:
/// configuration checks that every routed provider has its settings).
#[derive(Debug, Error)]
#[error("route names provider `{0}`, which is not configured")]
pub struct MissingProvider(pub ProviderName);

impl SmsRouter {
    /// SMS routes over `providers`; every provider a route names must be among them.
    pub fn new(
        routes: RouteTable,
        providers: Vec<Provider>,
        send_timeout: Duration,
    ) -> Result<Self, MissingProvider> {
        let routes = BTreeMap::from([(Channel::Sms, routes)]);
        Self::with_channels(routes, ChannelFallback::NONE, providers, send_timeout)
    }

    /// Routes per channel, with `fallback` between channels, over `providers`.
    pub fn with_channels(
        routes: BTreeMap<Channel, RouteTable>,
        fallback: ChannelFallback,
        providers: Vec<Provider>,
        send_timeout: Duration,
    ) -> Result<Self, MissingProvider> {
        let providers: BTreeMap<_, _> = providers.into_iter().map(|p| (p.name(), p)).collect();
        if let Some(missing) = routes
            .values()
            .flat_map(RouteTable::providers)
            .find(|name| !providers.contains_key(name))
        {
            return Err(MissingProvider(missing));
        }
        let router = Self {
            routes,
            fallback,
            providers,
            send_timeout,
        };
        router.counters_at_zero();
        Ok(router)
    }

    /// Exports each routed provider's counters and each fall-through this
    /// router can make at 0, so a dashboard's `rate()` sees their first
    /// increment (rare events: a failure, a skip, a fallback).
    fn counters_at_zero(&self) {
        let providers: Vec<(&'static str, &'static str)> = self
            .providers
            .keys()
            .map(|name| (name.as_str(), name.channel().as_str()))
            .collect();
        let mut fallbacks = Vec::new();
        for start in self.fallback.channels() {
            let mut previous: Option<Channel> = None;
            for (channel, _) in self.channels_tried(start) {
                if let Some(from) = previous {
                    fallbacks.push((from.as_str(), channel.as_str()));
                }
                previous = Some(channel);
            }
        }
        metrics::delivery_at_zero(&providers, &GatewayError::KINDS, &fallbacks);
    }

    /// The channels a send asking for `start` tries in turn, with their
    /// routes: `start`, then its fallbacks, each only if it has routes
    /// (configuration refuses a fallback to a channel without them).
    fn channels_tried(&self, start: Channel) -> impl Iterator<Item = (Channel, &RouteTable)> {
        iter::once(start)
            .chain(self.fallback.after(start).iter().copied())
            .filter_map(|channel| self.routes.get(&channel).map(|routes| (channel, routes)))
    }

    /// The provider called `name`, if configured.
    pub fn provider(&self, name: ProviderName) -> Option<&Provider> {
        self.providers.get(&name)
    }

    /// Asks the providers of `channel`'s route for the destination in turn.
    async fn send_on(
        &self,
        channel: Channel,
        routes: &RouteTable,
        sms: &OutgoingSms<'_>,
        deadline: Instant,
    ) -> Result<Accepted, GatewayError> {
        let mut last_error = None;
        for &name in routes.route_for(|| sms.to.region()) {
            let Some(provider) = self.providers.get(&name) else {
                continue; // `with_channels` refused routes to missing providers
            };
            if last_error.is_some() && Instant::now() + MIN_TRY > deadline {
                tracing::warn!(provider = name.as_str(), "no time left to fail over");
                break;
            }
            match provider.take_turn(sms, deadline).await {
                Turn::Skipped => {}
                Turn::Answered(Ok(message_id)) => {
                    return Ok(Accepted {
                        channel,
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
}

/// Whether the next provider of the same channel may be asked after
/// `error`: only when this one surely did not deliver and another could do
/// better.
fn may_fail_over(error: &GatewayError) -> bool {
    match error {
        GatewayError::Unavailable(_)
        | GatewayError::Unauthorized(_)
        | GatewayError::Rejected(_) => true,
        // Maybe delivered: a second provider could make it two messages.
        GatewayError::Uncertain(_) => false,
        // The number itself cannot take this channel (another channel may).
        GatewayError::Undeliverable(_) => false,
    }
}

#[async_trait]
impl SmsGateway for SmsRouter {
    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<Accepted, GatewayError> {
        let deadline = Instant::now() + self.send_timeout;
        let mut last_error = None;
        let mut previous: Option<Channel> = None;
        for (channel, routes) in self.channels_tried(sms.channel) {
            if let Some(from) = previous {
                if Instant::now() + MIN_TRY > deadline {
                    tracing::warn!(channel = channel.as_str(), "no time left to fall through");
                    break;
                }
                metrics::channel_fallback(from.as_str(), channel.as_str());
                tracing::warn!(
                    from = from.as_str(),
                    to = channel.as_str(),
                    "channel surely did not deliver: falling through"
                );
            }
            match self.send_on(channel, routes, sms, deadline).await {
                Ok(accepted) => return Ok(accepted),
                // Nothing went out on this channel: the next one may carry the code.
                Err(error) if error.surely_not_sent() => {
                    last_error = Some(error);
                    previous = Some(channel);
                }
                // It may have gone out: another channel could make it two messages.
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            GatewayError::Unavailable(format!("no route for channel {}", sms.channel))
        }))
    }

    /// The one provider when every SMS goes to it alone, else `routes`
    /// (the log and metrics name each provider a failed send was tried at).
    fn provider(&self) -> &'static str {
        let Some(sms) = self.routes.get(&Channel::Sms) else {
            return "routes";
        };
        match sms.providers().into_iter().collect::<Vec<_>>().as_slice() {
            [only] if self.routes.len() == 1 && *sms == RouteTable::single(*only) => only.as_str(),
            _ => "routes",
        }
    }

    fn serves(&self, channel: Channel) -> bool {
        self.routes.contains_key(&channel)
    }

    fn fallback_after(&self, channel: Channel) -> &[Channel] {
        self.fallback.after(channel)
    }
}
