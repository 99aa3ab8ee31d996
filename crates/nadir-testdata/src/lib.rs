//! Where the shared third-party test data lives, and what to do when it is absent.
//!
//! Tests call [`shared_data`] with a path relative to `../shared/data`. When the
//! folder is missing the test prints a notice and is skipped (returns `None`),
//! unless `NADIR_REQUIRE_SHARED_DATA=1` (set by `.ci/run`), which turns the
//! absence into a failure so CI never skips silently.

use std::path::PathBuf;

/// Environment variable that overrides the data root.
pub const DATA_ENV: &str = "NADIR_SHARED_DATA";
/// Environment variable that makes missing data a failure.
pub const REQUIRE_ENV: &str = "NADIR_REQUIRE_SHARED_DATA";

/// Root of the shared data: `$NADIR_SHARED_DATA`, else `<workspace>/../shared/data`.
pub fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_ENV) {
        return PathBuf::from(dir);
    }
    // This crate sits at <workspace>/crates/nadir-testdata.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The path of `relative` under the shared data root, or `None` (with a printed
/// notice) when it is absent. Panics when absent and [`REQUIRE_ENV`] is `1`.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let path = data_root().join(relative);
    if path.exists() {
        return Some(path);
    }
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!(
            "shared test data {} is missing and {REQUIRE_ENV}=1: CI must not skip data tests",
            path.display()
        );
    }
    eprintln!(
        "notice: skipping, shared test data {} not found (set {DATA_ENV})",
        path.display()
    );
    None
}

/// Whether this machine can run a test that needs `tools` on the PATH (and root, when
/// `needs_root`): live capture in a network namespace, say. Prints a notice and returns
/// `false` when it cannot; panics instead when [`REQUIRE_ENV`] is `1` (CI installs them).
pub fn system_ready(tools: &[&str], needs_root: bool) -> bool {
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    };
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !on_path(t))
        .map(|t| t.to_string())
        .collect();
    if needs_root {
        let uid = std::process::Command::new("id").arg("-u").output();
        let root = uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            missing.push("root".into());
        }
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!(
            "this test needs {} and {REQUIRE_ENV}=1: CI must install them (see .ci/run)",
            missing.join(", ")
        );
    }
    eprintln!("notice: skipping, this test needs {}", missing.join(", "));
    false
}

/// A FIFO named `name` in `dir` (`mkfifo`), or `None` with a notice where it cannot be made.
pub fn fifo(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    let path = dir.join(name);
    let made = std::process::Command::new("mkfifo").arg(&path).status();
    if made.is_ok_and(|s| s.success()) {
        Some(path)
    } else {
        eprintln!("skipped: mkfifo could not make {}", path.display());
        None
    }
}

/// Macro-free early return for tests: `let Some(p) = nadir_testdata::shared_data(..) else { return };`
/// is the intended pattern.
#[cfg(test)]
mod tests {
    #[test]
    fn root_points_at_shared_data() {
        assert!(super::data_root().ends_with("shared/data"));
    }
}
