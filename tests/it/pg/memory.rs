//! Memory stays bounded: many steps at a high rate over many connections run
//! under an address-space limit (`ulimit -v`) on the tool alone (the server
//! is a url-backend server started by the test, outside the limit), and a
//! rate the client cannot drive drops operations (counted, reported as
//! overload) instead of queueing them without bound.

use std::os::unix::process::CommandExt;

use crate::common::*;

/// A url-backend scenario on a server started here: `steps` short steps under
/// the orders workload at `rate` over `connections`.
fn many_steps(dir: &std::path::Path, steps: usize, rate: &str, connections: u32) -> std::path::PathBuf {
    let migration = "SELECT pg_sleep(0.01);\n".repeat(steps);
    let scenario = url_scenario(dir, &migration);
    let text = std::fs::read_to_string(&scenario)
        .unwrap()
        .replace("rate = 50\nconnections = 4", &format!("rate = {rate}\nconnections = {connections}"));
    std::fs::write(&scenario, text).unwrap();
    scenario
}

/// `lockimpact run` on `url` with its address space limited to `limit_kb`.
fn run_limited(scenario: &std::path::Path, url: &str, limit_kb: u64, json: &std::path::Path) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(["run", scenario.to_str().unwrap(), "--url", url, "--allow-existing-server", "-q", "--json"]).arg(json);
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: limit_kb * 1024, rlim_max: limit_kb * 1024 };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run lockimpact")
}

fn server_with_orders() -> (lockimpact::clone::Server, String) {
    let server = source_server(&[("max_connections", "100")]);
    let sql = orders_seed(5000, 500);
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), sql).unwrap();
    server_tool(&server, "psql", "postgres", &["-q", "-v", "ON_ERROR_STOP=1", "-f", path.path().to_str().unwrap()]);
    server_tool(&server, "psql", "postgres", &["-c", "ALTER DATABASE postgres SET lockimpact.rehearsal = on"]);
    let url = source_url(&server, "postgres", "unused");
    (server, url)
}

#[test]
fn three_hundred_steps_at_1000_ops_over_16_connections_fit_in_1_5_gb() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server_with_orders();
    let scenario = many_steps(dir.path(), 300, "1000", 16);
    let json = dir.path().join("report.json");
    let out = run_limited(&scenario, &url, 1_500_000, &json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["steps"].as_array().unwrap().len(), 300);
    assert_eq!(r["migration"]["committed"], true, "{stderr}");
    let during: u64 = r["latency"].as_object().unwrap().values().map(|p| p["during"]["count"].as_u64().unwrap()).sum();
    assert!(during > 1000, "{during} operations during the migration\n{stderr}");
}

#[test]
fn an_overloaded_client_drops_operations_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server_with_orders();
    let scenario = many_steps(dir.path(), 1, "1e6", 2);
    let json = dir.path().join("report.json");
    let out = run_limited(&scenario, &url, 1_500_000, &json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!("no report ({e}); exit {:?}\n{stderr}", out.status.code());
    }))
    .unwrap();
    let w = &r["workload"];
    assert!(w["dropped"].as_u64().unwrap_or(0) > 0, "{w}");
    assert_eq!(w["kept_schedule"], false, "{w}");
    // The schedule is the target: what was dropped counts as issued, not as done.
    assert!(w["issued_rate"].as_f64().unwrap() > 10.0 * w["achieved_rate"].as_f64().unwrap(), "{w}");
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("the client was overloaded"), "{warnings}");
}

/// A step returning 2 GB (2 000 rows of 1 MB) under a 1.5 GB address-space
/// limit: its rows are streamed and discarded, never held.
#[test]
fn a_step_returning_two_gigabytes_is_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = server_with_orders();
    let scenario = many_steps(dir.path(), 0, "50", 2);
    std::fs::write(dir.path().join("migration.sql"), "SELECT repeat('x', 1000000) FROM generate_series(1, 2000);\n")
        .unwrap();
    let json = dir.path().join("report.json");
    let out = run_limited(&scenario, &url, 1_500_000, &json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["steps"][0]["outcome"], "ok", "{}", r["steps"]);
    assert_eq!(r["steps"][0]["rows"], 2000, "{}", r["steps"]);
}
