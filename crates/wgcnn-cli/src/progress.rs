//! Progress of long runs on stderr: an `indicatif` bar with rate and ETA on a terminal, plain
//! lines (no carriage returns, no escape codes) when stderr is a file or pipe, nothing with `-q`.
//!
//! Anything else written to stderr while a bar is drawn (errors, notes, log events) goes through
//! [`suspend`], which erases the bar, writes, and redraws it below.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// `-q`: only errors on stderr (no progress, no summaries, no notes).
static QUIET: AtomicBool = AtomicBool::new(false);

/// The bar being drawn, if any, so log lines can print above it (see `logging`).
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Plain mode prints a line after the first step (the rate and an ETA early), then at most
/// this often, and at the end of runs that took longer: a CI log of a long run shows it is
/// alive without one line per image, and a short one is left to the command's summary.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Runs `f` (which writes to stderr) with the active bar, if any, erased for the time being.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    // Clone the handle and release the lock first: `f` may log, and logging suspends too.
    let bar = ACTIVE.lock().ok().and_then(|active| active.clone());
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// An informational line on stderr (a summary, "wrote FILE"): above the bar, none with `-q`.
pub fn note(line: &str) {
    if !quiet() {
        suspend(|| eprintln!("{line}"));
    }
}

/// An error line on stderr: above the bar, printed even with `-q`.
pub fn error(line: &str) {
    suspend(|| eprintln!("{line}"));
}

enum Mode {
    Hidden,
    Bar(ProgressBar),
    Plain { last_line: Instant },
}

/// Progress over a known number of steps (images, runs).
pub struct Progress {
    mode: Mode,
    /// The line prefix, e.g. `classify` or `bench: timed runs`.
    what: String,
    /// What a step is, plural (`images`, `runs`).
    unit: &'static str,
    total: u64,
    done: u64,
    started: Instant,
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise; nothing with `-q` or for fewer than
    /// `min_total` steps (a single image needs no progress).
    pub fn new(what: &str, unit: &'static str, total: u64, min_total: u64) -> Progress {
        let mode = if quiet() || total < min_total {
            Mode::Hidden
        } else if std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template(&format!(
                "{{prefix}} [{{bar:30.cyan/blue}}] {{pos}}/{{len}} {unit} ({{rate}} {unit}/s, ETA {{eta}}) {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            // indicatif's own {per_sec} prints four decimals.
            .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}", state.per_sec());
            })
            .progress_chars("#>.");
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style)
                .with_prefix(what.to_string());
            // Redraw between steps too, so elapsed time and ETA move during a slow image.
            bar.enable_steady_tick(Duration::from_millis(250));
            if let Ok(mut active) = ACTIVE.lock() {
                *active = Some(bar.clone());
            }
            Mode::Bar(bar)
        } else {
            Mode::Plain {
                last_line: Instant::now(),
            }
        };
        Progress {
            mode,
            what: what.to_string(),
            unit,
            total,
            done: 0,
            started: Instant::now(),
        }
    }

    /// `n` more steps done; `message` (e.g. the last run's time) shows after the bar.
    pub fn inc(&mut self, n: u64, message: Option<String>) {
        self.done = (self.done + n).min(self.total);
        match &mut self.mode {
            Mode::Hidden => {}
            Mode::Bar(bar) => {
                if let Some(m) = message {
                    bar.set_message(m);
                }
                bar.inc(n);
            }
            Mode::Plain { last_line } => {
                let first = self.done == n.min(self.total);
                let finished = self.done == self.total;
                let due = last_line.elapsed() >= PLAIN_INTERVAL;
                let long = self.started.elapsed() >= PLAIN_INTERVAL;
                if (first && !finished) || due || (finished && long) {
                    *last_line = Instant::now();
                    eprintln!("{}", plain_line(self, message.as_deref()));
                }
            }
        }
    }
}

/// `classify: 12/40 images (3.1 images/s, ETA 9 s)`, or at the end
/// `classify: 40/40 images in 12.9 s (3.1 images/s)`.
fn plain_line(p: &Progress, message: Option<&str>) -> String {
    let secs = p.started.elapsed().as_secs_f64();
    let rate = p.done as f64 / secs.max(1e-9);
    let mut line = format!("{}: {}/{} {}", p.what, p.done, p.total, p.unit);
    if p.done == p.total {
        line.push_str(&format!(" in {secs:.1} s ({rate:.2} {}/s)", p.unit));
    } else {
        let eta = (p.total - p.done) as f64 / rate.max(1e-9);
        line.push_str(&format!(" ({rate:.2} {}/s, ETA {})", p.unit, duration(eta)));
    }
    if let Some(m) = message {
        line.push(' ');
        line.push_str(m);
    }
    line
}

/// `42 s`, `3 min 05 s`, `2 h 10 min`.
fn duration(secs: f64) -> String {
    let s = secs.round().clamp(0.0, 1e9) as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

impl Drop for Progress {
    /// Erases the bar whether the loop finished or left early with an error, so the error (or
    /// the summary) prints on a clean line.
    fn drop(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            if let Ok(mut active) = ACTIVE.lock() {
                *active = None;
            }
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(total: u64, done: u64) -> Progress {
        Progress {
            mode: Mode::Plain {
                last_line: Instant::now(),
            },
            what: "classify".into(),
            unit: "images",
            total,
            done,
            started: Instant::now() - Duration::from_secs(2),
        }
    }

    #[test]
    fn plain_line_shows_eta_while_running_and_total_time_at_the_end() {
        let running = plain_line(&plain(4, 2), None);
        assert!(
            running.starts_with("classify: 2/4 images (") && running.contains("ETA"),
            "{running}"
        );
        let done = plain_line(&plain(4, 4), Some("(12.0 ms)"));
        assert!(
            done.starts_with("classify: 4/4 images in 2.0 s (2.00 images/s)")
                && done.ends_with("(12.0 ms)"),
            "{done}"
        );
        assert!(!running.contains(['\r', '\x1b']) && !done.contains(['\r', '\x1b']));
    }

    #[test]
    fn durations_read_in_seconds_minutes_or_hours() {
        assert_eq!(duration(0.4), "0 s");
        assert_eq!(duration(59.4), "59 s");
        assert_eq!(duration(185.0), "3 min 05 s");
        assert_eq!(duration(7800.0), "2 h 10 min");
        assert_eq!(duration(f64::INFINITY), "277777 h 46 min");
    }
}
