//! Opens what the configuration selects: the SMS gateway (the router over
//! its providers) and the store (with the audit event writer that shares
//! Redis's pool).

use std::sync::Arc;

use super::StartupError;
use crate::{
    domain::HmacKeys,
    events::{EventWriter, EventsConfig},
    sms::{SmsConfig, SmsGateway, SmsRouter},
    store::{MemoryStore, OtpStore, RedisStore, StoreConfig},
};

/// The router over the providers `OTP_SMS_ROUTES` (or the one gateway of
/// `OTP_SMS_GATEWAY`) selects; it announces each provider in the log (and
/// warns loudly about the console).
pub(super) fn open_gateway(sms: &SmsConfig) -> Result<Arc<dyn SmsGateway>, StartupError> {
    Ok(Arc::new(SmsRouter::build(sms)?))
}

/// The store `StoreConfig` selects, announced in the log. Opens no
/// connection: a Redis that is down only makes the service NOT_SERVING.
pub fn open_store(
    store: &StoreConfig,
    memory_max_entries: usize,
) -> Result<Arc<dyn OtpStore>, StartupError> {
    open_store_with_events(store, memory_max_entries, None).map(|(store, _)| store)
}

/// [`open_store`], and the audit event writer when `events` is set (it
/// shares the Redis pool).
pub(super) fn open_store_with_events(
    store: &StoreConfig,
    memory_max_entries: usize,
    events: Option<(&EventsConfig, HmacKeys)>,
) -> Result<(Arc<dyn OtpStore>, Option<EventWriter>), StartupError> {
    Ok(match store {
        StoreConfig::Memory => {
            tracing::info!("store: in memory (codes are lost on restart; one replica only)");
            (
                Arc::new(MemoryStore::with_max_entries(memory_max_entries)),
                None,
            )
        }
        StoreConfig::Redis(settings) => {
            // The topology displays with its passwords masked.
            tracing::info!(
                topology = %settings.topology,
                prefix = %settings.prefix,
                "store: Redis"
            );
            let redis = RedisStore::new(settings)?;
            // Config refuses events without Redis, so none are lost here.
            let events = events.map(|(events, keys)| {
                let appender = redis.stream_appender(&events.stream, events.maxlen);
                EventWriter::start(events, appender, keys)
            });
            (Arc::new(redis), events)
        }
    })
}
