//! The checkout.v1 wire contract: the code generated from `proto/checkout/v1/checkout.proto`.
//!
//! Only the edges (the coordinator's gRPC services, the lane's payment actor,
//! the binary) use these types; the core works on the domain types of
//! `checkout-storage`.

/// Generated messages, `lane_service_client`, `store_service_server` and friends.
pub mod v1 {
    tonic::include_proto!("checkout.v1");
}

/// The encoded `FileDescriptorSet` of checkout.v1, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("checkout_descriptor");

/// `google.protobuf.Timestamp`, as the generated messages use it.
pub use prost_types::Timestamp;
