//! Compiles the vendored ONNX schema (proto/onnx/onnx.proto) into Rust types
//! for the ONNX exporter, with a protobuf compiler written in Rust (protox),
//! so that building needs no `protoc`.

fn main() {
    #[cfg(feature = "onnx")]
    {
        const PROTO: &str = "proto/onnx/onnx.proto";
        println!("cargo:rerun-if-changed={PROTO}");
        let files = protox::compile([PROTO], ["proto/onnx"]).expect("onnx.proto compiles");
        // The schema's comments stay in onnx.proto: as Rust doc comments
        // their indented examples would be run as doctests.
        prost_build::Config::new()
            .disable_comments(["."])
            .compile_fds(files)
            .expect("prost generates the ONNX types");
    }
}
