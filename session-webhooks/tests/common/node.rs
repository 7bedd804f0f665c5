//! A node process: `examples/webhook_node.rs`, which `cargo test` builds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

use super::SECRET;

/// The example's binary, beside this test's. `cargo test` builds it when it builds every
/// target; a run of this test alone does not, so the binary is built here when any of its
/// sources is newer than it (building it always would rebuild half the tree whenever the
/// features of this run differ from a build of this package alone, as with
/// `cargo test --workspace`).
pub fn node_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).unwrap();
            let bin = profile_dir
                .join("examples")
                .join(format!("webhook_node{}", std::env::consts::EXE_SUFFIX));
            let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
            if built.is_none_or(|built| newest_source() > built) {
                build_node();
            }
            assert!(bin.exists(), "{} is missing", bin.display());
            bin
        })
        .clone()
}

/// The newest modification time of the sources the example is built from.
fn newest_source() -> SystemTime {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = [
        "Cargo.toml",
        "src",
        "examples",
        "tests/common",
        "../Cargo.toml",
        "../session-core",
    ]
    .iter()
    .map(|p| crate_dir.join(p))
    .collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(modified);
        }
    }
    newest
}

fn build_node() {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "-p",
        "session-webhooks",
        "--example",
        "webhook_node",
    ]);
    if cfg!(not(debug_assertions)) {
        cargo.arg("--release");
    }
    // What cargo sets for this test's run, not for a build: left in, build scripts that
    // watch it (ring's watches `CARGO_MANIFEST_DIR`) would rebuild half the tree.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_for_the_run = ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_"]
            .iter()
            .any(|p| key.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&&*key);
        if set_for_the_run {
            cargo.env_remove(&*key);
        }
    }
    let status = cargo.status().expect("cargo runs");
    assert!(status.success(), "building the webhook_node example failed");
}

/// A running node; killed (SIGKILL) when dropped.
pub struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    /// Starts a node on `store` (its `NODE_STORE`) delivering to `url`, with a 1 s lease,
    /// retries from 20 ms to 200 ms, and `env` besides; its log goes to `dir/ID.log`.
    pub fn start(dir: &Path, store: &str, url: &str, id: &str, env: &[(&str, &str)]) -> Self {
        let log = dir.join(format!("{id}.log"));
        let mut command = Command::new(node_binary());
        command
            .env("WEBHOOK_URL", url)
            .env("WEBHOOK_SECRET", SECRET)
            .env("NODE_STORE", store)
            .env("NODE_ID", id)
            .env("NODE_LEASE_MS", "1000")
            .env("NODE_BACKOFF_MS", "20,200")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        Self {
            child: command.spawn().unwrap(),
            log,
        }
    }

    /// SIGKILL (`Child::kill` on Unix): no clean-up of any kind.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it has taken the lease (it logs so).
    pub fn took_lease(&self) -> bool {
        self.log().contains("webhook lease taken")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
