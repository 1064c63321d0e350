//! Log output kept in memory, for the tests that read what a formatter wrote.

use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// A writer every clone of which appends to the same buffer.
#[derive(Clone, Default)]
pub(super) struct CapturedLines(Arc<Mutex<Vec<u8>>>);

impl CapturedLines {
    /// Everything written so far.
    pub(super) fn text(&self) -> String {
        let bytes = self.0.lock().expect("lines lock").clone();
        String::from_utf8(bytes).expect("UTF-8 lines")
    }
}

impl std::io::Write for CapturedLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lines lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLines {
    type Writer = CapturedLines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
