//! The integration suite, one test binary with a module per capability, so
//! the harness and the crate are compiled and linked once, and the shared
//! Redis Cluster and Sentinel set-ups are started once for the whole run.
//!
//! Everything here runs in one process, in parallel: tests share no global
//! state (no env vars, no metrics recorder or log subscriber — `logs` and
//! `metrics` drive the real binary in a child process), every test uses its
//! own phone numbers, and a server on a shared Redis set-up gets a key prefix
//! of its own. Tests that kill or fail over nodes start set-ups of their own.

#[macro_use]
mod common;

mod admin;
mod callers;
mod cap_refunds;
mod channel_limits;
mod channels;
mod cli;
mod events;
mod eviction;
mod grpcurl;
mod health_listener;
mod idempotency;
mod idempotency_callers;
mod idempotency_owner;
mod key_rotation;
mod limits;
mod logs;
mod memory_bound;
mod metrics;
mod providers;
mod pumping;
mod pumping_sources;
mod readme_claims;
mod redis_client_log_upgrade;
mod redis_cluster;
mod redis_faults;
mod redis_keys;
mod redis_sentinel;
mod redis_store;
mod redis_upgrade;
mod refunds;
mod rollback;
mod routes;
mod send;
mod server;
mod spend;
mod store_contract;
mod textbee;
mod tls;
mod traces;
mod trust_reload;
mod verify;
mod verify_limits;
