//! Generates the checkout.v1 messages, clients and servers, and the descriptor set that server reflection serves.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("checkout_descriptor.bin"))
        .compile_with_config(
            config,
            &[
                PathBuf::from("proto/checkout/v1/checkout.proto"),
                PathBuf::from("proto/google/rpc/status.proto"),
                PathBuf::from("proto/google/rpc/error_details.proto"),
            ],
            &[PathBuf::from("proto"), well_known],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
