//! Metric handles kept per label set, so a call records through a handle it
//! already holds instead of building a label set and looking it up in the
//! recorder's registry every time.

use std::sync::OnceLock;

/// More label sets than a metric here meets in practice (the widest, gRPC
/// method × code, sees a handful of codes per method); label sets beyond
/// these are still recorded correctly, through the registry, just without the
/// shortcut.
const SLOTS: usize = 48;

/// One metric's handles by label values `K`, each registered the first time
/// its labels occur (so the page still lists only label sets that happened)
/// and reused after. Lookup is a scan of a few slots comparing `&'static str`
/// labels, which is far cheaper than the registry's hash of a fresh key.
pub(super) struct Handles<H, K> {
    slots: [OnceLock<(K, H)>; SLOTS],
}

impl<H, K: Copy + Eq> Handles<H, K> {
    pub(super) const fn new() -> Self {
        Self {
            slots: [const { OnceLock::new() }; SLOTS],
        }
    }

    /// The handle for `labels`, registered with `register` on first use.
    pub(super) fn get(&self, labels: K, register: impl Fn(K) -> H) -> Handle<'_, H> {
        for slot in &self.slots {
            // Two threads may race for one empty slot with different labels:
            // the loser's labels go on to the next free slot.
            let (slot_labels, handle) = slot.get_or_init(|| (labels, register(labels)));
            if *slot_labels == labels {
                return Handle::Kept(handle);
            }
        }
        Handle::Fresh(register(labels))
    }
}

/// A kept handle, or a fresh one when every slot is taken.
pub(super) enum Handle<'a, H> {
    Kept(&'a H),
    Fresh(H),
}

impl<H> std::ops::Deref for Handle<'_, H> {
    type Target = H;

    fn deref(&self) -> &H {
        match self {
            Self::Kept(handle) => handle,
            Self::Fresh(handle) => handle,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn each_label_set_is_registered_once_and_kept() {
        let registered = AtomicUsize::new(0);
        let handles: Handles<String, (&'static str, &'static str)> = Handles::new();
        let register = |(method, code): (&str, &str)| {
            registered.fetch_add(1, Ordering::Relaxed);
            format!("{method}/{code}")
        };
        for _ in 0..3 {
            assert_eq!(*handles.get(("VerifyOtp", "OK"), register), "VerifyOtp/OK");
            assert_eq!(*handles.get(("SendOtp", "OK"), register), "SendOtp/OK");
        }
        assert_eq!(registered.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn label_sets_beyond_the_slots_are_still_served() {
        let handles: Handles<usize, usize> = Handles::new();
        for round in 0..2 {
            for labels in 0..SLOTS + 5 {
                assert_eq!(
                    *handles.get(labels, |labels| labels * 10),
                    labels * 10,
                    "{round}"
                );
            }
        }
    }
}
