//! One test of the running test binary run again in child processes with lavapipe at other
//! subgroup sizes. `LP_NATIVE_VECTOR_WIDTH` sets lavapipe's SIMD width (bits), hence its
//! subgroup size; it is read when the Vulkan instance is made, hence the child processes.
//!
//! Only `std`: `tests/subgroup_widths.rs` includes this file too (by `#[path]`).

/// The variable that tells a child the subgroup size its adapter must report.
pub const LANES_VAR: &str = "WGCNN_TEST_SUBGROUP_LANES";

/// The lane count a child runs at ([`LANES_VAR`]), `None` outside a child.
pub fn child_lanes() -> Option<u32> {
    std::env::var(LANES_VAR)
        .ok()
        .map(|l| l.parse().expect("a lane count"))
}

/// Runs the test `test` (an exact name) of this test binary in a child process at 16-lane
/// (`LP_NATIVE_VECTOR_WIDTH=512`) and at 4-lane (`=128`) subgroups, with [`LANES_VAR`] set to
/// the lane count; prints each child's output and asserts that it passed its one test.
pub fn run_at_16_and_4_lavapipe_lanes(test: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    for (bits, lanes) in [(512, 16), (128, 4)] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", test, "--nocapture"])
            .env("LP_NATIVE_VECTOR_WIDTH", bits.to_string())
            .env(LANES_VAR, lanes.to_string())
            .output()
            .expect("run the test binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("--- {lanes} lanes ---\n{text}");
        assert!(out.status.success(), "{lanes}-lane child failed:\n{text}");
        assert!(
            text.contains("1 passed"),
            "{lanes}-lane child ran no test:\n{text}"
        );
    }
}
