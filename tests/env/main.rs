//! The environment-dependent tier, one binary with its own harness
//! (libtest-mimic): tests that need a Docker engine (`docker`), root
//! (`as_root`), or root with loop devices and xfsprogs (`reflink`,
//! `compare`: `lockimpact compare` on reflink copies, `--parallel`), or both
//! (`docker_cow`: the docker backend's copy-on-write resets). When
//! what they need is missing, each is reported *ignored* (skipped) by the
//! runner, after a SKIPPED line that says why; when `CI` (or
//! the module's `LOCKIMPACT_REQUIRE_*` variable) is set, each *fails*
//! instead, so CI cannot pass them without running them.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks)] // signals, rlimits and users for the processes under test

#[path = "../common/mod.rs"]
mod common;

mod as_root;
mod compare;
mod docker;
mod docker_cow;
mod reflink;

use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut trials = docker::trials();
    trials.extend(as_root::trials());
    trials.extend(reflink::trials());
    trials.extend(compare::trials());
    trials.extend(docker_cow::trials());
    libtest_mimic::run(&args, trials).exit();
}

/// Whether a missing dependency must fail the tests rather than skip them:
/// `CI` or the module's own variable is set.
fn required(variable: &str) -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os(variable).is_some()
}

/// `tests` as trials named `module::name`: run when `available` is `Ok`;
/// otherwise failed with its reason when `required`, else ignored.
fn gated(
    module: &str,
    tests: impl Iterator<Item = (&'static str, Box<dyn FnOnce() + Send>)>,
    available: Result<(), String>,
    required: bool,
) -> Vec<Trial> {
    tests
        .map(|(name, test)| {
            let name = format!("{module}::{name}");
            match &available {
                Ok(()) => Trial::test(name, move || {
                    test();
                    Ok(())
                }),
                Err(why) if required => {
                    let why = why.clone();
                    Trial::test(name, move || Err(Failed::from(why)))
                }
                Err(_) => Trial::test(name, || Ok(())).with_ignored_flag(true),
            }
        })
        .collect()
}
