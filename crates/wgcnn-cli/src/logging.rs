//! Log output: the `tracing` events of the wgcnn crates on stderr (stdout carries results), at
//! the level `-v`/`-q` choose unless `RUST_LOG` says otherwise.

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::time::uptime;

/// The filter for `-q` and `-v` counts. Targets match by prefix, so `wgcnn` covers every crate
/// of the workspace (`wgcnn_exec`, `wgcnn_graph`, ...) and nothing else: wgpu's own chatter
/// stays at warn.
fn directives(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,wgcnn=info",
        (false, 2) => "warn,wgcnn=debug",
        (false, _) => "warn,wgcnn=trace",
    }
}

/// Milliseconds to 0.01 for log fields (full precision only adds noise there).
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Writes each formatted event (one `write` per event) above the progress bar, if one is drawn.
struct AboveBar;

impl Write for AboveBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::progress::suspend(|| std::io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the subscriber. `RUST_LOG`, when set, wins over `-v`/`-q` (an invalid one is
/// reported and the flags' level used).
pub fn init(verbose: u8, quiet: bool) {
    let fallback = directives(verbose, quiet);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={spec:?} ({e}); using {fallback:?}");
            EnvFilter::new(fallback)
        }),
        _ => EnvFilter::new(fallback),
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Time since start rather than wall clock: the gaps between events are the stage timings.
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| AboveBar)
        .with_ansi(color)
        .with_timer(uptime())
        .try_init();
    if let Err(e) = installed {
        eprintln!("warning: logging is off: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn verbosity_maps_to_wgcnn_levels_and_quiet_wins() {
        assert_eq!(directives(0, false), "warn");
        assert_eq!(directives(1, false), "warn,wgcnn=info");
        assert_eq!(directives(2, false), "warn,wgcnn=debug");
        assert_eq!(directives(5, false), "warn,wgcnn=trace");
        assert_eq!(directives(3, true), "error");
        for v in 0..4 {
            assert!(
                tracing_subscriber::EnvFilter::try_new(directives(v, false)).is_ok(),
                "{v}"
            );
        }
    }
}
