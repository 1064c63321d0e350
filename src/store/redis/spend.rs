//! Spend ledgers on Redis: one hash per ledger and period, reserved in and
//! refunded by `reserve_spend.lua` and `refund_spend.lua` (on one server or
//! Sentinel a send reserves within `count_send_and_put_code.lua`, whose
//! reply is read here too: `spend_decision`). Every ledger key
//! carries the `{spend}` hash tag, so one decision's keys (the service's
//! hour and day, a caller's day) are in one slot on a Cluster as well.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use deadpool_redis::redis::{ScriptInvocation, Value};

use super::{
    RedisStore, millis,
    send_log::{number_at, split_reply},
};
use crate::{
    spend::Micros,
    store::{
        SpendDecision, SpendLedger, SpendRefusal, SpendReservation, SpendWindow, StoreError,
        spend_window::{bucket_ms, reservation_at},
    },
};

impl RedisStore {
    /// `windows`' hashes, then, until this process has reserved in each of
    /// them, the same windows' in the previous layout (`reserve_spend.lua`
    /// takes a window's spend over from it when the window is new there).
    pub(super) fn spend_keys_to_hand(&self, windows: &[SpendWindow]) -> HandedSpendKeys {
        self.spend_keys.to_hand(&self.prefix, windows)
    }

    /// The script reserved (or refused) in `handed`'s windows: each is in
    /// this layout from now on.
    pub(super) fn spend_windows_reserved_in(&self, handed: HandedSpendKeys) {
        if handed.previous.is_some() {
            self.spend_keys.reserved_in(&handed.slots);
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
        let handed = self.spend_keys_to_hand(windows);
        handed.add_to(&mut invocation);
        for window in windows {
            invocation.arg(window.limit.0).arg(bucket_ms(window.period));
        }
        let reply: Vec<Value> = self.run(&invocation).await?;
        let decision = spend_decision(&reply, amount, windows)?;
        self.spend_windows_reserved_in(handed);
        Ok(decision)
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
            invocation
                .key(spend_key(&self.prefix, ledger, *period))
                .arg(*bucket);
        }
        let _given: i64 = self.run(&invocation).await?;
        Ok(())
    }
}

/// The spend keys a script is handed.
#[derive(Debug, Default)]
pub(super) struct HandedSpendKeys {
    /// The windows' hashes.
    keys: Vec<String>,
    /// The same windows' in the previous layout, if handed too.
    previous: Option<Vec<String>>,
    /// Each window's place in [`SpendKeys`].
    slots: Vec<usize>,
}

impl HandedSpendKeys {
    /// How many keys are handed.
    pub(super) fn count(&self) -> usize {
        self.keys.len() + self.previous.as_ref().map_or(0, Vec::len)
    }

    /// Hands them, the windows' first.
    pub(super) fn add_to(&self, invocation: &mut ScriptInvocation<'_>) {
        for key in self.keys.iter().chain(self.previous.iter().flatten()) {
            invocation.key(key);
        }
    }
}

/// Every spend window this process has handed a script: its key names,
/// built once (a priced send would otherwise format two or three per call),
/// and whether the process has reserved in it since it started. The first
/// reservation took the previous layout's spend over (if it had any), so
/// later calls leave the previous layout's keys out: two fewer keys per
/// priced send. (A window whose hash then expires, a whole window without a
/// reservation, has nothing left in the previous layout to take over unless
/// old replicas still serve: README, "Spend windows".) The service's two
/// windows, and one per caller that has sent with a caller cap in force:
/// as many as the callers file or the CA names, never forgotten (a few
/// hundred bytes each).
#[derive(Debug, Default)]
pub(super) struct SpendKeys(Mutex<KnownWindows>);

#[derive(Debug, Default)]
struct KnownWindows {
    windows: Vec<WindowKeys>,
    /// Each ledger's windows' places in `windows`.
    by_ledger: HashMap<SpendLedger, Vec<usize>>,
}

#[derive(Debug)]
struct WindowKeys {
    period: Duration,
    key: String,
    previous: String,
    reserved_in: bool,
}

impl KnownWindows {
    /// `window`'s place, added if new.
    fn slot(&mut self, prefix: &str, window: &SpendWindow) -> usize {
        let known = self.by_ledger.get(&window.ledger).and_then(|slots| {
            slots
                .iter()
                .copied()
                .find(|slot| self.windows[*slot].period == window.period)
        });
        known.unwrap_or_else(|| {
            self.windows.push(WindowKeys {
                period: window.period,
                key: spend_key(prefix, &window.ledger, window.period),
                previous: previous_spend_key(prefix, &window.ledger, window.period),
                reserved_in: false,
            });
            let slot = self.windows.len() - 1;
            let slots = self.by_ledger.entry(window.ledger.clone()).or_default();
            slots.push(slot);
            slot
        })
    }
}

impl SpendKeys {
    fn to_hand(&self, prefix: &str, windows: &[SpendWindow]) -> HandedSpendKeys {
        let mut known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut handed = HandedSpendKeys::default();
        let mut all_reserved_in = true;
        for window in windows {
            let slot = known.slot(prefix, window);
            let keys = &known.windows[slot];
            all_reserved_in &= keys.reserved_in;
            handed.keys.push(keys.key.clone());
            handed.slots.push(slot);
        }
        if !all_reserved_in {
            let previous = handed
                .slots
                .iter()
                .map(|slot| known.windows[*slot].previous.clone());
            handed.previous = Some(previous.collect());
        }
        handed
    }

    fn reserved_in(&self, slots: &[usize]) {
        let mut known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for slot in slots {
            if let Some(keys) = known.windows.get_mut(*slot) {
                keys.reserved_in = true;
            }
        }
    }
}

/// The hash of `ledger`'s window of `period` under key `prefix`
/// (`spend_window.lua`'s layout): every ledger in the `{spend}` hash tag.
fn spend_key(prefix: &str, ledger: &SpendLedger, period: Duration) -> String {
    window_key(prefix, ":v2", ledger, period)
}

/// The same window's hash in the layout before `spend_window.lua`'s (a
/// running total `t` beside each bucket), which a window new in this layout
/// takes its spend over from (a rolling upgrade keeps its caps).
fn previous_spend_key(prefix: &str, ledger: &SpendLedger, period: Duration) -> String {
    window_key(prefix, "", ledger, period)
}

/// `ledger`'s window of `period` in the `layout` (`""` or `":v2"`).
fn window_key(prefix: &str, layout: &str, ledger: &SpendLedger, period: Duration) -> String {
    let period_ms = millis(period);
    match ledger {
        SpendLedger::Service => format!("{prefix}:{{spend}}{layout}:service:{period_ms}"),
        // Braces in a name would not change the tag (the first `{...}`
        // wins) but are replaced as in the send logs' keys.
        SpendLedger::Caller(name) => format!(
            "{prefix}:{{spend}}{layout}:caller:{}:{period_ms}",
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
        "reserved" => Ok(SpendDecision::Reserved(reservation_at(
            amount,
            windows,
            number_at(&numbers, 0)?,
        ))),
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
