//! Compiles proto/inference.proto with protox (a protobuf compiler in Rust), so building needs
//! no `protoc` on the PATH; tonic-prost-build then writes the server and client stubs.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/inference.proto");
    let fds = protox::compile(["proto/inference.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
