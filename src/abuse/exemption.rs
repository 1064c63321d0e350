//! How long an operator may exempt a destination prefix from the pumping
//! guard (the admin API): bounded, so an exemption forgotten about still
//! ends and the guard judges the prefix again.

use std::time::Duration;

use thiserror::Error;

/// The longest exemption an operator may grant: one forgotten about still
/// ends within a month, and the guard judges the prefix again.
pub const MAX_PREFIX_EXEMPTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long an exemption lasts: at least a second, at most
/// [`MAX_PREFIX_EXEMPTION`]. Ending one is its own action
/// (`PumpingAdmin::end_exemption`), never a zero length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExemptionPeriod(Duration);

/// Why a length is not an [`ExemptionPeriod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("must be 1 to {} seconds (30 days)", MAX_PREFIX_EXEMPTION.as_secs())]
pub struct ExemptionPeriodError;

impl ExemptionPeriod {
    /// `seconds` as an exemption's length, if within bounds.
    pub fn from_secs(seconds: u64) -> Result<Self, ExemptionPeriodError> {
        let period = Duration::from_secs(seconds);
        if seconds == 0 || period > MAX_PREFIX_EXEMPTION {
            return Err(ExemptionPeriodError);
        }
        Ok(Self(period))
    }

    /// The length.
    pub fn duration(self) -> Duration {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exemption_lasts_a_second_to_thirty_days() {
        assert_eq!(ExemptionPeriod::from_secs(0), Err(ExemptionPeriodError));
        assert_eq!(
            ExemptionPeriod::from_secs(1).map(ExemptionPeriod::duration),
            Ok(Duration::from_secs(1))
        );
        assert!(ExemptionPeriod::from_secs(2_592_000).is_ok());
        assert_eq!(
            ExemptionPeriod::from_secs(2_592_001),
            Err(ExemptionPeriodError)
        );
    }
}
