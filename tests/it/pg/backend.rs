//! Backend choice: `auto` says which backend it chose and why, falls back to
//! local binaries of the requested major version when Docker cannot serve
//! it, and a missing Docker engine is one clear message (exit code 2). These
//! need no Docker: DOCKER_HOST points at a socket nobody listens on.

use crate::common::*;

const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";

fn run_without_docker(args: &[&str]) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let out = bin().arg("run").args(args).arg("--json").arg(&json).env("DOCKER_HOST", NO_ENGINE).output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).unwrap()),
    }
}

#[test]
fn docker_without_an_engine_is_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let o = run_without_docker(&[scenario.to_str().unwrap(), "--backend", "docker", "--set", "clone.pg_version=15"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("needs a Docker engine, and none answers"), "{}", o.stderr);
    assert!(o.stderr.lines().count() <= 4, "not one clear message:\n{}", o.stderr);
}

#[test]
fn auto_falls_back_to_local_binaries_of_the_requested_version_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let major = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .expect("local PostgreSQL server binaries");
    let set = format!("clone.pg_version={major}");
    let o = run_without_docker(&[scenario.to_str().unwrap(), "--set", &set]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let line = o.stderr.lines().find(|l| l.contains("backend: local (auto:")).expect("a backend line");
    assert!(line.contains("no Docker engine answers") && line.contains(&format!("PostgreSQL {major}")), "{line}");
}

#[test]
fn auto_without_any_backend_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    // No PostgreSQL 9 anywhere, and no Docker engine.
    let o = run_without_docker(&[scenario.to_str().unwrap(), "--set", "clone.pg_version=9"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("no backend can provide PostgreSQL 9"), "{}", o.stderr);
    assert!(o.stderr.contains("apt-get install postgresql-9") && o.stderr.contains("Install Docker"), "{}", o.stderr);
}

#[test]
fn an_image_with_the_local_backend_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let o = run_without_docker(&[scenario.to_str().unwrap(), "--backend", "local", "--image", "postgres:15"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--image") && o.stderr.contains("needs the docker backend"), "{}", o.stderr);
    let o = run_without_docker(&[scenario.to_str().unwrap(), "--backend", "podman"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--backend = \"podman\" is not known"), "{}", o.stderr);
}
