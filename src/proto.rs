//! Types and service traits generated from `proto/otp/v1/otp.proto`, and
//! the admin API's from `proto/otp/admin/v1/admin.proto` in [`admin`].

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("otp.v1");

/// `otp.admin.v1`: the operator's API (`src/admin.rs` serves it).
pub mod admin {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]

    tonic::include_proto!("otp.admin.v1");
}

/// Encoded descriptors of both APIs, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("otp_descriptor");
