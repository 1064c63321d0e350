//! Types and service traits generated from `proto/otp/v1/otp.proto`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("otp.v1");

/// Encoded descriptors of the API, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("otp_descriptor");
