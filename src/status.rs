//! Progress output on stderr: the `lockimpact: …` progress lines, and on a
//! terminal a live status line redrawn in place during the rehearsal (phase,
//! step, ops/s, p99 of the last second, sessions blocked now). Silent with
//! `--quiet`; the live line is off when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::fmt::fmt_ms;
use crate::sampler::LiveBlocked;
use crate::timeline::{Clock, Slot};
use crate::workload::Seconds;

/// Erases the current terminal line.
const CLEAR: &str = "\r\x1b[2K";

/// How often the live line is redrawn.
const REDRAW: Duration = Duration::from_millis(250);

/// Writes a line on stderr, quietly doing nothing when stderr is gone (a
/// closed terminal after SIGHUP): cleanup must not stop on a message.
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Where progress goes: decided once from `--quiet` and whether stderr is a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    quiet: bool,
    live: bool,
    /// The candidate these lines are about, when candidates run at once.
    label: Option<char>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress { quiet, live: !quiet && std::io::stderr().is_terminal(), label: None }
    }

    /// The same progress with each line labelled `[label]`, and no live
    /// line (for candidates running at once, whose lines take turns).
    pub fn labelled(self, label: char) -> Progress {
        Progress { live: false, label: Some(label), ..self }
    }

    /// One progress line (clears the live line first; it is redrawn after).
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            self.line(msg);
        }
    }

    /// A line said even with `--quiet`: something the user must act on.
    pub fn warn(&self, msg: &str) {
        self.line(msg);
    }

    /// Writes a line on stderr; a stderr that is gone (a closed terminal
    /// after SIGHUP) is not an error: the run goes on and cleans up.
    fn line(&self, msg: &str) {
        let clear = if self.live { CLEAR } else { "" };
        let _ = match self.label {
            Some(label) => writeln!(std::io::stderr(), "{clear}lockimpact [{label}]: {msg}"),
            None => writeln!(std::io::stderr(), "{clear}lockimpact: {msg}"),
        };
    }

    /// Starts the live status line for one rehearsal (a no-op off a terminal).
    pub fn live_line(
        &self,
        clock: Arc<Clock>,
        steps: Vec<String>,
        seconds: Arc<Mutex<Seconds>>,
        blocked: Arc<LiveBlocked>,
    ) -> LiveLine {
        let stop = CancellationToken::new();
        let handle = self.live.then(|| {
            let token = stop.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REDRAW);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = token.cancelled() => break,
                    }
                    let line = {
                        let secs = seconds.lock().expect("seconds");
                        status_text(&clock, &steps, secs.last(), &blocked)
                    };
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "{CLEAR}{line}");
                    let _ = err.flush();
                }
                let _ = write!(std::io::stderr(), "{CLEAR}");
            })
        });
        LiveLine { stop, handle }
    }
}

fn status_text(
    clock: &Clock,
    steps: &[String],
    last: Option<&crate::run_record::SecondRecord>,
    blocked: &LiveBlocked,
) -> String {
    let phase = match clock.current() {
        Slot::Warmup => "warmup".to_string(),
        Slot::Baseline => "baseline".to_string(),
        Slot::Between => "migration".to_string(),
        Slot::Step(i) => {
            let name: String = steps.get(i).map(|s| s.chars().take(40).collect()).unwrap_or_default();
            format!("step {}/{}: {name}", i + 1, steps.len())
        }
        Slot::After => "after the migration".to_string(),
    };
    let (ops, p99) = match last {
        Some(s) if s.ops > 0 => (s.ops.to_string(), fmt_ms(s.p99_us as f64 / 1000.0)),
        _ => ("0".to_string(), "-".to_string()),
    };
    format!(
        "[{:>4}s] {phase} | {ops} ops/s | p99 {p99} | blocked now {} ({} by the migration)",
        clock.start.elapsed().as_secs(),
        blocked.any.load(Ordering::Relaxed),
        blocked.by_migration.load(Ordering::Relaxed),
    )
}

/// The running live status line; `finish` erases it.
pub struct LiveLine {
    stop: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl LiveLine {
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for LiveLine {
    fn drop(&mut self) {
        // An interrupted run drops the line without `finish`: stop redrawing.
        self.stop.cancel();
    }
}
