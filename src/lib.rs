//! otp-service: a gRPC service that sends SMS one-time passwords and verifies them.
//!
//! Request flow: `service` (parse, reject bad input) → `otp` (policy) →
//! `store` / `sms` → back up to `service`, which maps results and errors to gRPC.
//! The admin API (`admin`) is a second gRPC face on the same flow.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod abuse;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod eviction_guard;
pub mod health;
pub mod health_listener;
pub mod metrics;
pub mod otp;
pub mod proto;
pub mod server;
pub mod service;
pub mod sms;
pub mod spend;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use server::Application;
