//! The checkout.v1 wire contract: the code generated from `proto/checkout/v1/checkout.proto` (and the
//! `google.rpc` error details it answers with).
//!
//! Only the edges (the coordinator's gRPC services, the lane's payment actor,
//! the binary) use these types; the core works on the domain types of
//! `checkout-storage`.

/// Generated messages, `lane_service_client`, `store_service_server` and friends.
pub mod v1 {
    tonic::include_proto!("checkout.v1");
}

/// `google.rpc.Status`, `ErrorInfo` and `BadRequest`: the details of an error (AIP-193).
pub mod google_rpc {
    tonic::include_proto!("google.rpc");
}

/// The encoded `FileDescriptorSet` of checkout.v1, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("checkout_descriptor");

/// `google.protobuf.Timestamp`, as the generated messages use it.
pub use prost_types::Timestamp;
