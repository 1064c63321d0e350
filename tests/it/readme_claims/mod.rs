//! One test per README promise that had none (issue 27), each named after
//! the sentence it proves and able to fail if that sentence stops being true.
//! One file per area of the README.

mod caller_auth;
mod codes;
mod events;
mod idempotency;
mod providers;
mod pumping;
mod sentinel_credentials;
mod shutdown;
mod startup_log;
