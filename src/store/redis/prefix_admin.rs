//! The admin API's operations on the pumping guard's prefixes, Redis side
//! (twins of `src/store/memory/prefixes.rs`'s): the service-wide lists of
//! suspended and exempt prefixes (`prefix_list.lua`, one key each) and each
//! prefix's own keys (`lift_prefix.lua`, `prefix_counts.lua`, in its slot).

use std::time::Duration;

use super::{RedisStore, millis};
use crate::{
    abuse::{DestinationPrefix, PrefixRule},
    store::{PrefixExemption, PrefixVerdict, StoreError, SuspendedPrefix},
};

/// The longest guard window the configuration allows
/// (`OTP_PUMPING_WINDOW_SECONDS`): a lift's judged-up-to mark must outlive
/// every send it covers, and the lift does not know the window.
const LONGEST_WINDOW: Duration = Duration::from_secs(604_800);

/// One script per key or slot: on a Cluster the lists and each prefix's
/// keys live in different slots.
impl RedisStore {
    /// Runs `prefix_list.lua` on `key` with `args`: the prefixes listed there
    /// after the change, with the time until each one's end.
    async fn prefix_list(
        &self,
        key: String,
        args: &[&str],
    ) -> Result<Vec<(DestinationPrefix, Duration)>, StoreError> {
        let mut invocation = self.scripts.prefix_list.key(key);
        for arg in args {
            invocation.arg(*arg);
        }
        let reply: Vec<String> = self.run(&invocation).await?;
        let unexpected = || StoreError::Protocol(format!("prefix_list replied {reply:?}"));
        let (now, entries) = reply.split_first().ok_or_else(unexpected)?;
        let now: u64 = now.parse().map_err(|_| unexpected())?;
        entries
            .chunks(2)
            .map(|entry| match entry {
                [prefix, ends_at] => {
                    let ends_at: f64 = ends_at.parse().map_err(|_| unexpected())?;
                    let prefix = DestinationPrefix::parse(prefix).map_err(|_| unexpected())?;
                    // Scores are whole milliseconds, well inside f64's exact range.
                    let ends_in = Duration::from_millis((ends_at as u64).saturating_sub(now));
                    Ok((prefix, ends_in))
                }
                _ => Err(unexpected()),
            })
            .collect()
    }

    pub(super) async fn list_suspended_prefixes(
        &self,
        rule: &PrefixRule,
    ) -> Result<Vec<SuspendedPrefix>, StoreError> {
        let listed = self
            .prefix_list(self.suspended_prefixes_key(), &["list"])
            .await?;
        let mut suspended = Vec::with_capacity(listed.len());
        for (prefix, _) in listed {
            let [sends, approved, suspension, ..] = self.prefix_keys(&prefix);
            let (judged, approvals, lift_in_ms): (u64, u64, i64) = self
                .run(
                    self.scripts
                        .prefix_counts
                        .key(sends)
                        .key(approved)
                        .key(suspension)
                        .arg(millis(rule.judge_after)),
                )
                .await?;
            // The list outlives a suspension only until its own lift time;
            // the prefix's key is the truth.
            if let Ok(lift_in_ms @ 1..) = u64::try_from(lift_in_ms) {
                suspended.push(SuspendedPrefix {
                    prefix,
                    lift_in: Duration::from_millis(lift_in_ms),
                    counts: PrefixVerdict {
                        judged,
                        approved: approvals,
                    },
                });
            }
        }
        Ok(suspended)
    }

    /// `lift_prefix.lua` with `exempt_ms` (-1: leave any exemption as it
    /// is, 0: end it), then, if it changed anything, the prefix off the
    /// suspended list. Returns whether the prefix was suspended and whether
    /// it was exempt.
    async fn lift_prefix(
        &self,
        prefix: &DestinationPrefix,
        exempt_ms: i64,
    ) -> Result<(bool, bool), StoreError> {
        let [_, _, suspension, _, _, exempt, since] = self.prefix_keys(prefix);
        let (was_suspended, was_exempt): (i64, i64) = self
            .run(
                self.scripts
                    .lift_prefix
                    .key(suspension)
                    .key(exempt)
                    .key(since)
                    .arg(exempt_ms)
                    .arg(millis(LONGEST_WINDOW)),
            )
            .await?;
        let (was_suspended, was_exempt) = (was_suspended == 1, was_exempt == 1);
        // Ending an exemption that was not in force changed nothing.
        if exempt_ms != 0 || was_exempt {
            self.prefix_list(self.suspended_prefixes_key(), &["remove", prefix.as_str()])
                .await?;
        }
        Ok((was_suspended, was_exempt))
    }

    pub(super) async fn lift_prefix_suspension(
        &self,
        prefix: &DestinationPrefix,
    ) -> Result<bool, StoreError> {
        let (was_suspended, _) = self.lift_prefix(prefix, -1).await?;
        Ok(was_suspended)
    }

    pub(super) async fn exempt_prefix(
        &self,
        prefix: &DestinationPrefix,
        duration: Duration,
    ) -> Result<bool, StoreError> {
        let ms = millis(duration);
        let (_, was_exempt) = self
            .lift_prefix(prefix, i64::try_from(ms).unwrap_or(i64::MAX))
            .await?;
        if duration.is_zero() && !was_exempt {
            return Ok(false);
        }
        let ms = ms.to_string();
        let change: &[&str] = if duration.is_zero() {
            &["remove", prefix.as_str()]
        } else {
            &["add", prefix.as_str(), &ms]
        };
        self.prefix_list(self.exempt_prefixes_key(), change).await?;
        Ok(was_exempt)
    }

    pub(super) async fn list_prefix_exemptions(&self) -> Result<Vec<PrefixExemption>, StoreError> {
        let listed = self
            .prefix_list(self.exempt_prefixes_key(), &["list"])
            .await?;
        Ok(listed
            .into_iter()
            .map(|(prefix, ends_in)| PrefixExemption { prefix, ends_in })
            .collect())
    }
}
