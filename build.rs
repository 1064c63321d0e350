//! Compiles `proto/` with a vendored `protoc` (nothing to install by hand) and
//! writes the descriptor set that gRPC server reflection serves.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    // Respect an explicit PROTOC (e.g. a distro build); otherwise use the vendored one.
    if env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        unsafe { env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("otp_descriptor.bin"))
        .compile_protos(
            &["proto/otp/v1/otp.proto", "proto/otp/admin/v1/admin.proto"],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
