//! Durations as callers see them: whole seconds.

use std::time::Duration;

/// Whole seconds, rounded up, saturating at `u32::MAX`. Callers act on whole
/// seconds: rounding down would invite a retry that is refused again, or call
/// a code expired while it still works.
pub fn ceil_seconds(duration: Duration) -> u32 {
    let seconds = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_fraction_rounds_up_to_the_next_second() {
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(30)), 30);
        assert_eq!(ceil_seconds(Duration::from_millis(30_001)), 31);
        assert_eq!(ceil_seconds(Duration::MAX), u32::MAX);
    }
}
