//! Telling a caller that hung up from one that got its answer.

/// Held while a SendOtp call waits for its send task. Dropped unanswered,
/// the call was cancelled by its caller (a reset stream, a client deadline):
/// the send goes on without it, so the SMS may still arrive and a code whose
/// SMS failed is still rolled back. The log line says so, because the
/// caller's own log will show only an error.
#[derive(Default)]
pub(super) struct HangUpWatch {
    answered: bool,
}

impl HangUpWatch {
    /// The send task finished while the caller was still waiting.
    pub(super) fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for HangUpWatch {
    fn drop(&mut self) {
        if !self.answered {
            tracing::info!("caller hung up mid-send; the send finishes without it");
        }
    }
}
