//! pgbench scripts as workload classes: the built-in tpcb-like and
//! select-only scripts run on a `pgbench -i` dataset, mixed by weight as
//! pgbench's `-f script@weight` does.

use std::collections::BTreeMap;

use crate::common::*;

#[test]
fn builtin_tpcb_like_runs_on_a_pgbench_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let server = source_server(&[]);
    server_tool(&server, "pgbench", "postgres", &["-i", "-s", "1", "-q"]);
    let dump = dir.path().join("pgbench.dump");
    server_tool(&server, "pg_dump", "postgres", &["-Fc", "-f", dump.to_str().unwrap()]);
    drop(server);

    std::fs::write(
        dir.path().join("workload.toml"),
        "[[class]]\nname = \"tpcb\"\nscript = \"builtin:tpcb-like\"\nweight = 1\n\n\
         [[class]]\nname = \"select_only\"\nscript = \"select-only.sql\"\nweight = 3\n\n\
         [[class]]\nname = \"sleepy\"\nrate = 5\nscript_text = '''\n\\set n random_gaussian(1, 10, 2.5)\n\
         \\set z random_zipfian(1, 100000, 1.1)\n\\sleep :n ms\nSELECT abalance FROM pgbench_accounts WHERE aid = :z;\n'''\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("select-only.sql"),
        "-- as pgbench -b select-only\n\\set aid random(1, 100000 * :scale)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("migration.sql"), "ALTER TABLE pgbench_accounts ADD COLUMN note text;\n").unwrap();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"pgbench\"\n[snapshot]\ndump = \"{}\"\n[workload]\nfile = \"workload.toml\"\nrate = 120\n\
             connections = 4\n[phases]\nwarmup = \"300ms\"\nbaseline = \"2s\"\ncooldown = \"1s\"\n\
             [migration]\nfile = \"migration.sql\"\n",
            dump.display()
        ),
    )
    .unwrap();
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    assert_eq!(r["workload"]["errors"], 0, "{}\n{}", o.stdout, o.stderr);
    let counts = class_counts(r);
    assert!(counts["tpcb"] > 50 && counts["sleepy"] > 5, "{counts:?}");
    let weighted: BTreeMap<String, f64> =
        counts.iter().filter(|(k, _)| *k != "sleepy").map(|(k, v)| (k.clone(), *v as f64)).collect();
    let share = shares(&weighted);
    eprintln!("pgbench mix: {counts:?}, select_only share {:.4} (weight 3 of 4)", share["select_only"]);
    assert!((share["select_only"] - 0.75).abs() <= 0.02, "{share:?}");
    assert_eq!(o.code, 0, "{}", o.stdout);
}

#[test]
fn script_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.toml");
    std::fs::write(&w, "[[class]]\nname = \"s\"\nweight = 1\nscript = \"bad.sql\"\n").unwrap();
    std::fs::write(dir.path().join("bad.sql"), "\\set a 1\n\\set b random(1,\nSELECT :a;\n").unwrap();
    let scenario = tiny_scenario(dir.path(), "SELECT 1;", "");
    let text = std::fs::read_to_string(&scenario).unwrap();
    let text = text.replace(&repo().join("workloads/orders/workload.toml").display().to_string(), w.to_str().unwrap());
    std::fs::write(&scenario, text).unwrap();
    let o = run(&[scenario.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("bad.sql: line 2"), "{}", o.stderr);
}
