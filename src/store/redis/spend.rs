//! Spend ledgers on Redis: one hash per ledger and period, reserved in and
//! refunded by `reserve_spend.lua` and `refund_spend.lua` (on one server or
//! Sentinel a send reserves within `count_send_and_put_code.lua`, whose
//! reply is read here too: `spend_decision`). Every ledger key
//! carries the `{spend}` hash tag, so one decision's keys (the service's
//! hour and day, a caller's day) are in one slot on a Cluster as well.

use std::time::Duration;

use deadpool_redis::redis::{ScriptInvocation, Value};

use super::{
    RedisStore, millis,
    send_log::{number_at, split_reply},
};
use crate::{
    spend::Micros,
    store::{SpendDecision, SpendLedger, SpendRefusal, SpendReservation, SpendWindow, StoreError},
};

impl RedisStore {
    /// The hash of `ledger`'s window of `period`.
    pub(super) fn spend_key(&self, ledger: &SpendLedger, period: Duration) -> String {
        spend_key(&self.prefix, ledger, period)
    }

    /// `windows`' hashes, then the same windows' in the previous layout
    /// (`reserve_spend.lua` takes a window's spend over from it once).
    pub(super) fn add_spend_window_keys(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        windows: &[SpendWindow],
    ) {
        for window in windows {
            invocation.key(self.spend_key(&window.ledger, window.period));
        }
        for window in windows {
            invocation.key(previous_spend_key(
                &self.prefix,
                &window.ledger,
                window.period,
            ));
        }
    }

    pub(super) async fn reserve_spend_script(
        &self,
        amount: Micros,
        windows: &[SpendWindow],
    ) -> Result<SpendDecision, StoreError> {
        if windows.is_empty() {
            return Ok(SpendDecision::Reserved(SpendReservation {
                amount,
                buckets: Vec::new(),
            }));
        }
        let mut invocation = self.scripts.reserve_spend.prepare_invoke();
        invocation.arg(amount.0);
        self.add_spend_window_keys(&mut invocation, windows);
        for window in windows {
            invocation.arg(window.limit.0).arg(millis(window.period));
        }
        let reply: Vec<Value> = self.run(&invocation).await?;
        spend_decision(&reply, amount, windows)
    }

    pub(super) async fn refund_spend_script(
        &self,
        reservation: &SpendReservation,
        amount: Micros,
    ) -> Result<(), StoreError> {
        if reservation.buckets.is_empty() || amount == Micros::ZERO {
            return Ok(());
        }
        let mut invocation = self.scripts.refund_spend.prepare_invoke();
        invocation.arg(amount.0.min(reservation.amount.0));
        for (ledger, period, bucket) in &reservation.buckets {
            invocation.key(self.spend_key(ledger, *period)).arg(*bucket);
        }
        let _given: i64 = self.run(&invocation).await?;
        Ok(())
    }
}

/// The hash of `ledger`'s window of `period` under key `prefix`
/// (`spend_window.lua`'s layout): every ledger in the `{spend}` hash tag.
fn spend_key(prefix: &str, ledger: &SpendLedger, period: Duration) -> String {
    window_key(&format!("{prefix}:{{spend}}:v2"), ledger, period)
}

/// The same window's hash in the layout before `spend_window.lua`'s (a
/// running total `t` beside each bucket), which a window new in this layout
/// takes its spend over from (a rolling upgrade keeps its caps).
fn previous_spend_key(prefix: &str, ledger: &SpendLedger, period: Duration) -> String {
    window_key(&format!("{prefix}:{{spend}}"), ledger, period)
}

fn window_key(head: &str, ledger: &SpendLedger, period: Duration) -> String {
    let period_ms = millis(period);
    match ledger {
        SpendLedger::Service => format!("{head}:service:{period_ms}"),
        // Braces in a name would not change the tag (the first `{...}`
        // wins) but are replaced as in the send logs' keys.
        SpendLedger::Caller(name) => format!(
            "{head}:caller:{}:{period_ms}",
            name.replace(['{', '}'], "_")
        ),
    }
}

/// `reserve_spend.lua`'s reply for `amount` in `windows`.
pub(super) fn spend_decision(
    reply: &[Value],
    amount: Micros,
    windows: &[SpendWindow],
) -> Result<SpendDecision, StoreError> {
    let (status, numbers) = split_reply(reply)?;
    match status.as_str() {
        "reserved" => {
            let buckets = windows
                .iter()
                .enumerate()
                .map(|(index, window)| {
                    Ok((
                        window.ledger.clone(),
                        window.period,
                        number_at(&numbers, index)?,
                    ))
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(SpendDecision::Reserved(SpendReservation {
                amount,
                buckets,
            }))
        }
        "refused" => {
            let refusals = numbers
                .chunks(2)
                .map(|pair| {
                    let index = usize::try_from(number_at(pair, 0)?).unwrap_or(usize::MAX);
                    let window = windows.get(index).ok_or_else(|| {
                        StoreError::Protocol(format!("reserve_spend named window {index}"))
                    })?;
                    Ok(SpendRefusal {
                        cap: window.cap,
                        retry_after: Duration::from_millis(number_at(pair, 1)?),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(SpendDecision::Refused { refusals })
        }
        other => Err(StoreError::Protocol(format!(
            "reserve_spend replied `{other}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis Cluster runs a script only if all its keys are in one slot; the
    /// hash tag (the text in the first braces) decides the slot.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("a hash tag");
        let close = key[open..].find('}').expect("a closed hash tag");
        &key[open + 1..open + close]
    }

    #[test]
    fn every_ledger_of_a_decision_shares_one_hash_tag() {
        let hour = Duration::from_secs(3_600);
        let day = Duration::from_secs(86_400);
        let checkout = SpendLedger::Caller("{checkout}".into());
        let keys = [
            spend_key("otp", &SpendLedger::Service, hour),
            spend_key("otp", &SpendLedger::Service, day),
            spend_key("otp", &checkout, day),
            previous_spend_key("otp", &SpendLedger::Service, hour),
            previous_spend_key("otp", &checkout, day),
        ];
        assert_eq!(keys[0], "otp:{spend}:v2:service:3600000");
        assert_eq!(keys[2], "otp:{spend}:v2:caller:_checkout_:86400000");
        assert_eq!(keys[3], "otp:{spend}:service:3600000");
        assert_eq!(keys[4], "otp:{spend}:caller:_checkout_:86400000");
        assert!(keys.iter().all(|key| hash_tag(key) == "spend"), "{keys:?}");
        assert_ne!(keys[0], keys[1], "a ledger per period");
    }
}
