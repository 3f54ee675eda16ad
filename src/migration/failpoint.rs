//! Failure injection (`--fail-at`): the stop points a rehearsal fails its
//! migration at on purpose — a step, and where in it (`At`) — and the
//! `Injector` the runner tells each point it passes, which terminates the
//! migration's session (`pg_terminate_backend`, as a deploy that dies or
//! loses its connection leaves it) once the point is reached.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::Client;

use super::{Migration, StepKind};
use crate::error::{Error, Result};
use crate::run_record::StepRecord;
pub use crate::run_record::StopAt as At;

/// Which steps `--fail-at` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steps {
    /// Every step (pauses excepted), each its own rehearsal.
    All,
    /// One step, by its 1-based number.
    Number(usize),
    /// One step, by its name.
    Name(String),
}

/// `--fail-at`: `all`, a step number or a step name, each optionally
/// followed by `:start`, `:middle` (the default) or `:end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailAt {
    pub steps: Steps,
    pub at: At,
}

impl FailAt {
    pub fn parse(value: &str) -> std::result::Result<FailAt, Error> {
        let (what, at) = match value.rsplit_once(':') {
            Some((w, a)) if At::parse(a.trim()).is_some() => (w.trim(), At::parse(a.trim()).unwrap_or_default()),
            _ => (value.trim(), At::default()),
        };
        let steps = match what {
            "" => {
                return Err(Error::input(format!(
                    "--fail-at {value:?} names no step; write all, a step number (3) or a step name, optionally \
                     with :start, :middle or :end"
                )));
            }
            "all" => Steps::All,
            n if n.bytes().all(|b| b.is_ascii_digit()) => match n.parse::<usize>() {
                Ok(k) if k >= 1 => Steps::Number(k),
                _ => return Err(Error::input(format!("--fail-at {value:?}: steps are numbered from 1"))),
            },
            name => Steps::Name(name.trim_matches('"').to_string()),
        };
        Ok(FailAt { steps, at })
    }

    /// The stop points on `m`'s forward steps; `forward` holds the steps of
    /// the forward rehearsal (how long each took, how many batches a backfill
    /// ran: where a middle is).
    pub fn points(&self, m: &Migration, forward: &[StepRecord]) -> Result<Vec<StopPoint>> {
        let last = m.rollback_from.unwrap_or(m.steps.len());
        let chosen: Vec<usize> = match &self.steps {
            Steps::All => (0..last).filter(|&i| !matches!(m.steps[i].kind, StepKind::Pause(_))).collect(),
            Steps::Number(k) if *k <= last => vec![k - 1],
            Steps::Number(k) => {
                return Err(Error::input(format!(
                    "--fail-at {k}: the migration has {last} steps; name one of 1-{last} (or all)"
                )));
            }
            Steps::Name(name) => match m.steps[..last].iter().position(|s| &s.name == name) {
                Some(i) => vec![i],
                None => {
                    let names: Vec<String> = m.steps[..last].iter().map(|s| format!("{:?}", s.name)).collect();
                    return Err(Error::input(format!(
                        "--fail-at: no step is named {name:?}; the steps are {} (or give its number)",
                        names.join(", ")
                    )));
                }
            },
        };
        Ok(chosen.into_iter().map(|i| StopPoint::new(m, i, self.at, forward.get(i))).collect())
    }
}

/// One stop point, resolved on the migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopPoint {
    /// Index into the migration's steps.
    pub step: usize,
    pub name: String,
    pub at: At,
    /// For `Middle`: terminate once this statement (1-based, of the step's)
    /// has run, when the step has several; once this batch has committed,
    /// for a backfill.
    pub after_statement: Option<usize>,
    /// For `Middle` of one statement or a backfill: terminate once the step
    /// has run this long (half its forward time).
    pub after_time: Option<Duration>,
    /// The step is a backfill: `after_statement` counts its batches.
    pub batches: bool,
}

impl StopPoint {
    fn new(m: &Migration, step: usize, at: At, forward: Option<&StepRecord>) -> StopPoint {
        let s = &m.steps[step];
        // Statements, or the batches that wrote rows (the last one wrote none).
        let n = match &s.kind {
            StepKind::Sql(st) => st.len() as u64,
            StepKind::Backfill { .. } => forward.and_then(|f| f.batches).unwrap_or(1).saturating_sub(1),
            StepKind::Pause(_) => 1,
        };
        let (after_statement, after_time) = match at {
            At::Middle if n > 1 => (Some(n.div_ceil(2) as usize), None),
            At::Middle => (None, Some(forward.map(|f| f.duration).unwrap_or_default() / 2)),
            _ => (None, None),
        };
        let batches = matches!(s.kind, StepKind::Backfill { .. });
        StopPoint { step, name: s.name.clone(), at, after_statement, after_time, batches }
    }

    /// "step 3 (add CHECK NOT VALID) at its middle".
    pub fn describe(&self) -> String {
        let detail = match (self.after_statement, self.after_time) {
            (Some(k), _) if self.batches => format!(", after its batch {k}"),
            (Some(k), _) => format!(", after its statement {k}"),
            (_, Some(t)) => format!(", {} ms in", t.as_millis()),
            _ => String::new(),
        };
        format!("step {} ({}) at its {}{detail}", self.step + 1, self.name, self.at.as_str())
    }
}

/// Where the runner is, for the injector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Step `i` is about to run.
    BeforeStep(usize),
    /// Statement `k` (1-based, of the step's) of step `i` has run (for a
    /// backfill: its batch `k` has committed).
    AfterStatement(usize, usize),
    /// Step `i`'s statements have all run; its transaction is still open.
    AfterBody(usize),
    /// Step `i` has run this long (a timed middle).
    During(usize, Duration),
}

/// Terminates the migration's session at its stop point: told each `Mark`
/// the runner passes, it ends the session from a session of its own.
pub struct Injector {
    point: StopPoint,
    /// A session of its own, and the migration's pid.
    control: Arc<Client>,
    pid: i32,
    /// Where it fired (`None` until it does).
    fired: Arc<Mutex<Option<Mark>>>,
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Injector {
    pub fn new(point: StopPoint, control: Client, pid: i32) -> Injector {
        Injector { point, control: Arc::new(control), pid, fired: Arc::new(Mutex::new(None)), timer: Mutex::new(None) }
    }

    pub fn point(&self) -> &StopPoint {
        &self.point
    }

    /// Where the session was terminated, if it was.
    pub fn fired(&self) -> Option<Mark> {
        *self.fired.lock().expect("injector")
    }

    /// The runner passes `mark`: terminates the session when it is the stop
    /// point (or arms the timer of a timed middle). A step that ends before
    /// its timer fires is stopped at its end instead.
    pub async fn reached(&self, mark: Mark) {
        let p = &self.point;
        let hit = match mark {
            Mark::BeforeStep(i) if i == p.step => match (p.at, p.after_time) {
                (At::Start, _) => true,
                (At::Middle, Some(t)) => {
                    self.arm(t, Mark::During(i, t));
                    false
                }
                _ => false,
            },
            Mark::AfterStatement(i, k) => i == p.step && p.after_statement == Some(k),
            Mark::AfterBody(i) if i == p.step => {
                // The end of the step, or of a timed middle that has not fired yet.
                let timer = self.timer.lock().expect("injector").take();
                if (p.at == At::End || p.after_time.is_some()) && claim(&self.fired, mark) {
                    terminate(&self.control, self.pid).await;
                } else if let Some(t) = timer {
                    // The timer claimed it first: wait for its termination.
                    let _ = t.await;
                }
                return;
            }
            _ => false,
        };
        if hit && claim(&self.fired, mark) {
            terminate(&self.control, self.pid).await;
        }
    }

    /// A timed middle: terminates the session after `after`, unless the
    /// step's end came first (it claims the stop point then).
    fn arm(&self, after: Duration, mark: Mark) {
        let (control, pid, fired) = (self.control.clone(), self.pid, self.fired.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if claim(&fired, mark) {
                terminate(&control, pid).await;
            }
        });
        *self.timer.lock().expect("injector") = Some(task);
    }

    fn disarm(&self) {
        if let Some(t) = self.timer.lock().expect("injector").take() {
            t.abort();
        }
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Records that the stop point fired at `mark`; false when it already had.
fn claim(fired: &Mutex<Option<Mark>>, mark: Mark) -> bool {
    let mut f = fired.lock().expect("injector");
    f.is_none() && f.replace(mark).is_none()
}

/// Ends backend `pid` and waits (up to 5 s) until it is gone.
async fn terminate(control: &Client, pid: i32) {
    let _ = control.execute("SELECT pg_terminate_backend($1, 5000)", &[&pid]).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let p = |s: &str| FailAt::parse(s).map_err(|e| e.message);
        assert_eq!(p("all"), Ok(FailAt { steps: Steps::All, at: At::Middle }));
        assert_eq!(p("all:end"), Ok(FailAt { steps: Steps::All, at: At::End }));
        assert_eq!(p("3:start"), Ok(FailAt { steps: Steps::Number(3), at: At::Start }));
        assert_eq!(p("validate CHECK"), Ok(FailAt { steps: Steps::Name("validate CHECK".into()), at: At::Middle }));
        assert_eq!(p("\"a:b\":end"), Ok(FailAt { steps: Steps::Name("a:b".into()), at: At::End }));
        assert!(p("0").unwrap_err().contains("from 1"));
        assert!(p(":end").unwrap_err().contains("names no step"));
    }
}
