//! The bench report: the machine, how loaded it was, and one row per
//! measurement with both sides and their ratio. Written as `bench.json` (the
//! model as is) and `BENCHMARKS.md` (the same, as tables); nothing is
//! computed while writing.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Config;

pub const SECTIONS: &[(u8, &str)] = &[
    (1, "Closed-loop throughput"),
    (2, "Open-loop accuracy"),
    (3, "Sampler cost and resolution"),
    (4, "Clone reset"),
    (5, "End to end"),
    (6, "Replica sampler cost"),
    (7, "Synthetic data generation"),
    (8, "Prediction accuracy"),
];

/// What profiling the hot path showed, and what was changed because of it
/// (from the profiling session of the change that added this suite; the
/// figures above are re-measured on every run, these are not).
pub const PROFILE_NOTES: &[&str] = &[
    "Method: `perf record -F 1999 -e cpu-clock` attached to `lockimpact bench --quick` during the closed-loop row, \
     `strace -c` on the workload thread, client CPU time per operation from `getrusage`/`wait4` (row 1).",
    "Before: the workers ran on the main 2-thread tokio runtime. 58 % of the client's samples were in the kernel \
     scheduler (`finish_task_switch` 35 %, `_raw_spin_unlock_irqrestore` 23 %): every response woke a task on the \
     other runtime thread. The Rust code itself (tokio-postgres encode/parse, hdrhistogram, the worker loop) was \
     under 10 %.",
    "First change: all workers on one current-thread runtime of their own. Per operation that thread made 1.0 \
     `sendto`, 1.0 `recvfrom` and 0.77 `epoll_wait` calls (`strace -c`), and with 16 connections its CPU per \
     operation (9.6 µs) was below pgbench's (11.5 µs), yet its throughput was 0.6 of pgbench's: one client thread \
     next to 16 busy server backends gets about 1/17 of the 2 CPUs from the scheduler (12 % of 2 cores / 9.6 µs ≈ \
     12 000 ops/s, close to the 14 600 measured), while pgbench -j 16 has 16 threads.",
    "Second change: one current-thread runtime per connection (up to 64), each connection made on the \
     runtime its worker runs on, as pgbench -j N gives each connection a thread. With 4 connections `perf stat` \
     counted 1.35 context switches and 11 µs of CPU per operation for the replayer against 0.66 and 5 µs for \
     pgbench; the call graphs put the difference in the kernel (`epoll_wait` blocking and preemption on return \
     from `sendto` when the server backend wakes), not in Rust code (about 15 % of the client's samples: \
     tokio-postgres's request and response channels, message parsing, hdrhistogram).",
    "Third change (current): the same profile on a slower machine of this kind (16 connections: replayer 22.2 µs \
     of client CPU per operation, pgbench 15.4 µs, ratio 0.95) split the client's samples into kernel time equal \
     to pgbench's and user time 1.7 times pgbench's, spread thin over tokio's scheduler (task polls, wake-ups, \
     the I/O driver's `epoll_wait`: 1.16 per operation), tokio-postgres's per-request channel pair and its \
     message parsing; the shared per-second counters' lock was not contended (151 `futex` calls in 3 s). The \
     workers now speak the protocol themselves (`workload::wire`, with `postgres-protocol`, tokio-postgres's \
     own message crate) on a blocking socket, one thread per connection: per operation one `sendto` of \
     Bind/Execute/Sync from a reused buffer and one blocking `recvfrom` (pgbench: `sendto`, `ppoll`, \
     `recvfrom`), parameters as text like pgbench's, nothing allocated. Client CPU per operation fell to \
     pgbench's or below, and the closed-loop ratio rose above 1.0 (row 1).",
    "Fourth change (issue 22; profiled on a machine with a load average of 11–25 from other builds, so the \
     figures are rough): row 1 had reported the replayer's client CPU per operation at 1.24–1.43 times pgbench's. \
     Part of that was the bench's own accounting: the CPU time of the 6 s window was divided by the operations \
     of the 5 whole seconds inside it (6/5 too much); it is now divided by the operations of the window. The \
     rest, per operation: every worker took the shared per-second lock and, through \
     `CancellationToken::is_cancelled`, a second mutex shared by all of them, read the clock three times, and \
     took its operation number with an atomic add on a counter all of them shared. Now a worker appends each \
     finished operation to a list of its own (a lock only it takes per operation) and hands every worker's \
     list to the per-second figures once per second, in order; the stop flag is an atomic; one clock reading \
     ends an operation and starts the next; numbers are taken 64 at a time. After it, `strace -c` on one \
     worker thread for 4 s: 1.0 `sendto` and 1.0 `recvfrom` per operation and 4 `futex` calls in 6 461 \
     operations (a pgbench thread: 1.0 `sendto`, 2.0 `recvfrom` of which 1.0 `EAGAIN`, 1.0 `ppoll`); `perf \
     record` of the closed-loop row put the workers' user-space samples per operation at about 0.6 of \
     pgbench's and their kernel samples (waking the server backend on `sendto`, being woken in `recvfrom`, \
     freeing the reply's buffers) at about 1.2: a worker thread blocks in `recvfrom` on every operation (1.05 \
     voluntary context switches per operation, against 0.66 for a pgbench thread, whose `ppoll` often finds the \
     reply already there; read from /proc over 3 s), which is where the rest of the gap is. Open loop: the pacer thread handed each operation to a worker \
     through a channel (its own `nanosleep` wake-up, a futex wake and the worker's context switch per \
     operation), which cost more than the operation itself at high rates (0.774 of a 29.2 k ops/s target in \
     the issue). The schedule is now arithmetic and the workers take from it (one atomic add) and sleep until \
     the intended start themselves: no pacer thread, no hand-off.",
    "Pacer (before the fourth change): it was a task on the busy runtime with tokio's 1 ms timer; emission lag p50 0.7–0.8 ms, p99 8–14 ms. It \
     now runs on its own thread with `nanosleep` and 10 µs timer slack: lag p50 0.03 ms; its p99 is now set by how \
     long the thread waits for a CPU on a loaded 2-core machine.",
    "Hot path: SQL is prepared once per connection (never built per operation); the parameter vector is reused; \
     int and choice values do not allocate (the text generator does, by nature); each worker keeps its own \
     histograms, merged when its slot changes, and its own list of finished operations, handed to the per-second \
     figures once per second. Pipelining several operations on one connection would change what a session \
     does (an application session runs one statement at a time), so the replayer does not pipeline.",
    "Sampler: its poll query costs 0.06–0.08 ms on the server with 16 sessions holding 82 locks (pgbench running \
     the query alone; about 0.1 ms with the client on an idle machine), under 1 % of one core at a 10 ms \
     interval. Yet once the workers stopped being the bottleneck (third change), sampling cost 11 % of \
     saturated throughput in two runs: reading `pg_locks` takes every lock-manager partition lock, and every \
     backend that takes a lock meanwhile (each writing transaction does, on its transaction id) waits. The poll \
     is now gated by a one-time filter that reads only the backends' status array: `pg_locks` is read only when \
     a session waits on a lock or the migration is busy. Loss after the gate: 3.7 % and -2.7 % in two runs of \
     5 separate pairs, 16 % in a third: that method (a run with the sampler, a run without, 8 s each) could not \
     resolve a few per cent on this machine, whose throughput drifts by tens of per cent over a minute. Row 3 \
     now toggles the sampler every second within one run and pairs adjacent seconds (30 pairs): 2.6 % by \
     median pair and by total, the two agreeing.",
];

#[derive(Debug, Serialize, Default)]
pub struct Machine {
    pub kernel: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_mib: u64,
    pub server: String,
    pub pgbench: String,
    pub build: String,
}

/// One side of a row.
#[derive(Debug, Serialize, Clone)]
pub struct Side {
    pub label: String,
    /// The figure compared (a median when there are several samples).
    pub value: f64,
    pub unit: String,
    /// Every sample, in run order.
    pub samples: Vec<f64>,
}

impl Side {
    pub fn new(label: &str, value: f64, unit: &str) -> Side {
        Side { label: label.into(), value, unit: unit.into(), samples: vec![value] }
    }
    pub fn samples(label: &str, samples: Vec<f64>, unit: &str) -> Side {
        Side { label: label.into(), value: super::median(&samples), unit: unit.into(), samples }
    }
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub section: u8,
    pub id: String,
    pub what: String,
    pub a: Side,
    pub b: Side,
    /// a / b.
    pub ratio: f64,
    /// What the ratio means, e.g. "replayer / pgbench".
    pub ratio_means: String,
    pub target: String,
    /// Whether the target is met; `None` when the row has no target.
    pub met: Option<bool>,
    /// Other figures of the same measurement (lag percentiles, CPU per op, …).
    pub detail: String,
}

impl Row {
    pub fn new(section: u8, id: &str, what: &str, a: Side, b: Side, ratio_means: &str) -> Row {
        let ratio = if b.value != 0.0 { a.value / b.value } else { 0.0 };
        Row {
            section,
            id: id.into(),
            what: what.into(),
            a,
            b,
            ratio,
            ratio_means: ratio_means.into(),
            target: String::new(),
            met: None,
            detail: String::new(),
        }
    }
    /// The ratio as the median of the per-round ratios a[i] / b[i]: each pair
    /// ran back to back, so a slow drift in the machine's load cancels out.
    pub fn paired(mut self) -> Row {
        let ratios: Vec<f64> =
            self.a.samples.iter().zip(&self.b.samples).filter(|(_, b)| **b != 0.0).map(|(a, b)| a / b).collect();
        if !ratios.is_empty() {
            self.ratio = super::median(&ratios);
            self.ratio_means = format!("{}, median of {} back-to-back pairs", self.ratio_means, ratios.len());
        }
        self
    }

    pub fn target(mut self, target: &str, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }
    pub fn detail(mut self, detail: String) -> Row {
        self.detail = detail;
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    pub command: String,
    pub quick: bool,
    pub started_utc: String,
    pub duration_s: f64,
    pub machine: Machine,
    /// /proc/loadavg (1, 5, 15 min) before and after the run.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    /// The 1-minute load average as each row began.
    pub load_during: Vec<(String, f64)>,
    pub connections: u32,
    pub rows_in_dataset: u64,
    pub rounds: u32,
    pub measure_s: f64,
    pub server_settings: Vec<String>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(cfg: &Config) -> Report {
        Report {
            schema_version: 1,
            tool: format!("lockimpact {}", env!("CARGO_PKG_VERSION")),
            command: command_line(),
            quick: cfg.quick,
            started_utc: utc_now(),
            duration_s: 0.0,
            machine: machine(),
            load_before: super::load_average(),
            load_after: [0.0; 3],
            load_during: Vec::new(),
            connections: cfg.connections,
            rows_in_dataset: cfg.rows,
            rounds: cfg.rounds,
            measure_s: cfg.measure.as_secs_f64(),
            server_settings: super::SETTINGS.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Notes the load average as row `row` begins.
    pub fn load(&mut self, row: &str) {
        self.load_during.push((row.to_string(), super::load_average()[0]));
    }

    pub fn finish(&mut self, took: Duration) {
        self.duration_s = took.as_secs_f64();
        self.load_after = super::load_average();
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the bench report serialises") + "\n"
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# lockimpact benchmarks\n");
        if self.quick {
            let _ = writeln!(
                s,
                "> **--quick run**: a tiny configuration that only checks the suite runs; the figures mean nothing.\n"
            );
        }
        let _ = writeln!(s, "Generated by `{}` on {} in {:.0} s.\n", self.command, self.started_utc, self.duration_s);
        let m = &self.machine;
        let _ = writeln!(s, "| machine | |\n|---|---|");
        let _ = writeln!(s, "| CPU | {} ({} cores) |", m.cpu, m.cores);
        let _ = writeln!(s, "| memory | {} MiB |", m.memory_mib);
        let _ = writeln!(s, "| kernel | {} |", m.kernel);
        let _ = writeln!(s, "| server | {} |", m.server);
        let _ = writeln!(s, "| pgbench | {} |", m.pgbench);
        let _ = writeln!(s, "| lockimpact | {} ({} build) |", self.tool, m.build);
        let _ = writeln!(s, "| server settings | {} |", self.server_settings.join(", "));
        let _ = writeln!(
            s,
            "| workload | orders, {} rows; {} connections; {} round(s) of {:.0} s per side |",
            self.rows_in_dataset, self.connections, self.rounds, self.measure_s
        );
        let _ = writeln!(
            s,
            "| load average (1/5/15 min) | before {:.2} {:.2} {:.2}; after {:.2} {:.2} {:.2} |\n",
            self.load_before[0],
            self.load_before[1],
            self.load_before[2],
            self.load_after[0],
            self.load_after[1],
            self.load_after[2]
        );
        if !self.load_during.is_empty() {
            let during: Vec<String> = self.load_during.iter().map(|(r, l)| format!("{r} {l:.2}")).collect();
            let _ = writeln!(
                s,
                "1-minute load average as each row began: {}. It counts the benchmark's own server, client and \
                 pgbench as well as anything else running; on {n} cores a load average well above {n} means \
                 processes waited for a CPU, and the figures below are noisier than on an idle machine.\n",
                during.join(", "),
                n = std::thread::available_parallelism().map_or(1, |n| n.get())
            );
        }
        for (n, title) in SECTIONS {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.section == *n).collect();
            if rows.is_empty() {
                continue; // not run (`--only`)
            }
            let _ = writeln!(s, "## {n}. {title}\n");
            let _ = writeln!(
                s,
                "| measurement | one side | other side | ratio | target | met |\n|---|---|---|---|---|---|"
            );
            for r in &rows {
                let met = match r.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "",
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.3} ({}) | {} | {} |",
                    r.what,
                    side(&r.a),
                    side(&r.b),
                    r.ratio,
                    r.ratio_means,
                    r.target,
                    met
                );
            }
            let details: Vec<&&Row> = rows.iter().filter(|r| !r.detail.is_empty()).collect();
            if !details.is_empty() {
                let _ = writeln!(s);
                for r in details {
                    let _ = writeln!(s, "- {}: {}", r.what, r.detail);
                }
            }
            let _ = writeln!(s);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "## Notes\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "## What the profile showed\n");
        for n in PROFILE_NOTES {
            let _ = writeln!(s, "- {n}");
        }
        s
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn side(x: &Side) -> String {
    let mut t = format!("{}: {} {}", x.label, num(x.value), x.unit);
    if x.samples.len() > 1 {
        let lo = x.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = x.samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = if x.value != 0.0 { (hi - lo) / x.value * 100.0 } else { 0.0 };
        let _ = write!(t, " (median of {}; {}–{}, spread {:.1} %)", x.samples.len(), num(lo), num(hi), spread);
    }
    t
}

/// The command as a user runs it: `lockimpact` and its arguments, whatever
/// path the binary was started from (a local build, `cargo run`).
fn command_line() -> String {
    std::iter::once("lockimpact".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ")
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_mib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_default();
    Machine {
        kernel: format!("Linux {kernel} ({os})"),
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_mib,
        server: String::new(),
        pgbench: String::new(),
        build: if cfg!(debug_assertions) { "debug".into() } else { "release".into() },
    }
}
