//! Compiles `proto/nttmart/v1/*.proto` with protox (pure Rust, no protoc) into
//! `OUT_DIR`, plus the descriptor set that the reflection service serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/nttmart/v1/mart.proto",
        "proto/nttmart/v1/admin.proto",
        "proto/nttmart/v1/sync.proto",
        "proto/nttmart/v1/hub.proto",
        "proto/nttmart/v1/report.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("nttmart_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
