//! Abuse protection policy: what limits sends (SMS pumping) and guesses, and which
//! numbers may be texted at all. Pure rules; the stores keep the counts.

mod country;
mod exemption;
mod limits;
mod pumping;
mod test_numbers;
mod verify_limits;

pub use country::{CountryList, CountryPolicy, CountryPolicyError};
pub use exemption::{ExemptionPeriod, ExemptionPeriodError, MAX_PREFIX_EXEMPTION};
pub use limits::{LimitKind, RateRule, SendLimits};
pub use pumping::{
    DestinationPrefix, GuardMode, MAX_PREFIX_DIGITS, PrefixError, PrefixRule, PumpingGuardSettings,
    SendSource,
};
pub use test_numbers::{TestNumbers, TestNumbersError};
pub use verify_limits::{
    DEFAULT_CLIENT_VERIFY_LIMIT, DEFAULT_SHARED_VERIFY_LIMIT, GLOBAL_VERIFIES_PER_SEND,
    VerifyLimits,
};
