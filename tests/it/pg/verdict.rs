//! The verdict is evidence, on real servers: a run whose workload did not run
//! during the migration is `inconclusive` (exit code 3) and says why; a
//! session replay starts at its recording's first statement; a scenario
//! without `[budget]` is judged by the documented default budget, named in
//! every format. `pure::verdict` checks that `compare` carries an
//! inconclusive candidate through.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::Value;

/// A migration that holds the migration phase open for `secs` after a fast DDL step.
fn migration(secs: f64) -> String {
    format!("ALTER TABLE orders ADD COLUMN note text;\nSELECT pg_sleep({secs});\n")
}

fn reasons(r: &Value) -> Vec<String> {
    r["verdict"]["inconclusive"].as_array().unwrap().iter().map(|i| i["reason"].as_str().unwrap().to_string()).collect()
}

/// A workload whose statements never finish within the run (`SELECT
/// pg_sleep(1000)`) completes nothing while the migration runs: no budget
/// is exceeded, yet the run is no evidence. Before: `Verdict: PASS`, exit 0.
#[test]
fn a_workload_that_never_finishes_is_inconclusive_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("sleepy.toml");
    std::fs::write(&workload, "[[class]]\nname = \"sleepy\"\nweight = 1\nsql = \"SELECT pg_sleep(1000)\"\n").unwrap();
    let extra = format!("[workload]\nfile = \"{}\"\nrate = 50\nconnections = 4\n", workload.display());
    let s = tiny_scenario(dir.path(), &migration(0.5), "");
    // The scenario's own [workload] is replaced by the sleepy one.
    let toml = std::fs::read_to_string(&s).unwrap();
    let (head, tail) = toml.split_once("[workload]").unwrap();
    let tail = &tail[tail.find("[phases]").unwrap()..];
    std::fs::write(&s, format!("{head}{extra}{tail}")).unwrap();

    let o = run(&[s.to_str().unwrap()]);
    assert_eq!(o.code, 3, "exit code\n{}\n{}", o.stdout, o.stderr);
    let r = o.report();
    assert_eq!(r["verdict"]["status"], "inconclusive", "{}", r["verdict"]);
    assert_eq!(r["verdict"]["pass"], false);
    assert_eq!(reasons(r), ["workload_during"], "{}", r["verdict"]);
    let during = &r["workload"]["during"];
    assert_eq!(during["completed"], 0, "{during}");
    assert!(during["target"].as_f64().unwrap() >= 1.0, "{during}");
    assert!(o.stdout.contains("Verdict: INCONCLUSIVE"), "{}", o.stdout);
    assert!(o.stdout.contains("still queued or running"), "the reason names the cause:\n{}", o.stdout);
    assert_eq!(
        o.stderr.lines().last(),
        Some(
            "exit code 3: inconclusive: no budget was exceeded, but the run is no evidence (see the verdict \
             above); this is lockimpact's answer, not a crash"
        ),
        "the last line says why the exit code is 3:\n{}",
        o.stderr
    );
    assert!(!o.stdout.contains("exit code 3"), "the report on stdout holds no exit line:\n{}", o.stdout);
}

/// A replay file whose sessions start `lead_in_ms` after the recording's
/// start: four sessions of point reads every 20 ms for 6 s.
fn late_replay(dir: &Path, lead_in_ms: f64) -> PathBuf {
    let (sessions, per_session) = (4, 300);
    let sql = "SELECT count(*) FROM orders WHERE id = 1";
    let mut text = format!(
        "{{\"lockimpact_replay\":1,\"duration_ms\":{},\"classes\":[{{\"name\":\"point\",\"sql\":{},\"count\":{}}}]}}\n",
        lead_in_ms + per_session as f64 * 20.0,
        serde_json::to_string(sql).unwrap(),
        sessions * per_session
    );
    for s in 0..sessions {
        let statements: Vec<String> = (0..per_session)
            .map(|k| {
                let at = lead_in_ms + (k * 20 + s * 5) as f64;
                format!("{{\"at_ms\":{at},\"sql\":{},\"class\":0,\"tx\":{k}}}", serde_json::to_string(sql).unwrap())
            })
            .collect();
        writeln!(text, "{{\"session\":\"s{s}\",\"statements\":[{}]}}", statements.join(",")).unwrap();
    }
    let path = dir.join("late.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// A `record log` replay whose first statement came 19 s after the log's
/// start replays from that statement: the rehearsal (a few seconds) runs
/// the workload during the migration. Before: it sent nothing ("achieved
/// 0.0 ops/s") and said PASS.
#[test]
fn a_replay_starts_at_its_first_recorded_statement() {
    let dir = tempfile::tempdir().unwrap();
    let replay = late_replay(dir.path(), 19_000.0);
    let s = tiny_scenario(dir.path(), &migration(0.5), "");
    let toml = std::fs::read_to_string(&s).unwrap();
    let (head, tail) = toml.split_once("[workload]").unwrap();
    let tail = &tail[tail.find("[phases]").unwrap()..];
    std::fs::write(&s, format!("{head}[workload]\nreplay = \"{}\"\n{tail}", replay.display())).unwrap();

    let o = run(&[s.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let r = o.report();
    let replayed = class_counts(r).get("point").copied().unwrap_or(0);
    assert!(replayed > 100, "{replayed} statements replayed: {}\n{}", r["latency"], o.stdout);
    let during = &r["workload"]["during"];
    // 4 sessions every 20 ms for 0.5 s: about 100 statements are due.
    assert!(during["target"].as_f64().unwrap() >= 50.0, "{during}");
    assert!(during["completed"].as_u64().unwrap() >= 50, "{during}");
    assert_eq!(r["verdict"]["status"], "pass", "{}", r["verdict"]);
}

/// A scenario without `[budget]` is judged by the default budget: a session
/// that waited 1.5 s on the migration fails it, and every format says it
/// was the default budget. Before: no budget, PASS, exit 0.
#[test]
fn a_scenario_without_budget_gets_the_default_budget() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(1.5);\n";
    let s = tiny_scenario(dir.path(), sql, "transaction = \"file\"");
    let md = dir.path().join("report.md");
    let html = dir.path().join("report.html");
    let o = run(&[s.to_str().unwrap(), "--out", md.to_str().unwrap(), "--out", html.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let r = o.report();
    assert_eq!(r["budget"]["source"], "default", "{}", r["budget"]);
    assert_eq!(r["budget"]["limits"][0]["budget"], "max_blocked_wait", "{}", r["budget"]);
    assert_eq!(r["budget"]["limits"][0]["limit"], 1000.0, "{}", r["budget"]);
    let violated: Vec<&str> =
        r["verdict"]["violations"].as_array().unwrap().iter().map(|v| v["budget"].as_str().unwrap()).collect();
    assert_eq!(violated, ["max_blocked_wait"], "{}", r["verdict"]);
    assert!(r["blocked"]["longest_ms"].as_f64().unwrap() > 1000.0, "{}", r["blocked"]);
    for (format, text) in [
        ("text", o.stdout.clone()),
        ("markdown", std::fs::read_to_string(&md).unwrap()),
        ("html", std::fs::read_to_string(&html).unwrap()),
    ] {
        assert!(text.contains("default budget"), "{format}:\n{text}");
        assert!(!text.contains("exit code 1"), "the exit line is for the terminal, not {format}:\n{text}");
    }
    assert_eq!(
        o.stderr.lines().last(),
        Some(
            "exit code 1: the verdict is FAIL: a budget was exceeded or the migration failed (see the verdict \
             above); this is lockimpact's answer, not a crash"
        ),
        "the last line says why the exit code is 1:\n{}",
        o.stderr
    );

    // A budget flag is the scenario's budget: the default no longer applies.
    let o = run(&[s.to_str().unwrap(), "--max-errors", "1000000"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("exit code"), "exit code 0 needs no explanation:\n{}", o.stderr);
    assert_eq!(o.report()["budget"]["source"], "scenario");
}
