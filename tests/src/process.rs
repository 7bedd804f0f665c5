//! Example apps as processes (or served in this one): built fresh, started on a free
//! port, their output kept, stopped when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use example_support::{Demo, Settings};

use crate::browser::Browser;
use crate::in_process::{self, Framework};

/// What the app prints once it accepts connections; the address follows it.
pub const READY_MARKER: &str = "listening on http://";

/// How long [`App::spawn`] waits for the readiness line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables of the contract. They are removed from what the app inherits,
/// so a developer's shell cannot change what a test sees.
const CONTRACT_ENV: &[&str] = &[
    "BIND",
    "PORT",
    "SESSION_STORE",
    "SESSION_KEYS",
    "SESSION_COOKIE_SECURE",
    "SESSION_TTL_SECS",
    "SESSION_IDLE_SECS",
    "SESSION_CACHE_SECS",
    "ADMIN_TOKEN",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "PUBLIC_URL",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "SCIM_TOKEN",
    "CAEP_TRANSMITTER_ISSUER",
    "CAEP_TRANSMITTER_JWKS_URL",
    "CAEP_AUDIENCE",
    "CAEP_RECEIVER_URL",
    "CAEP_RECEIVER_AUDIENCE",
    "CAEP_SIGNING_KEY",
];

/// Binaries already built by this test process, so that parallel tests build each once.
static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Where a scenario runs: an example binary in its own process, or an example app's
/// router served from inside the test process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The binary `axum-app` or `actix-app`, configured by environment variables.
    Binary(Framework),
    /// The same app served in this process, configured by the same variables.
    InProcess(Framework),
}

impl Target {
    /// The framework that serves the app.
    #[must_use]
    pub fn framework(self) -> Framework {
        match self {
            Self::Binary(f) | Self::InProcess(f) => f,
        }
    }
}

/// A running example app, stopped when dropped.
#[derive(Debug)]
pub struct App {
    runner: Runner,
    base_url: String,
    output: Arc<Mutex<String>>,
}

#[derive(Debug)]
enum Runner {
    Process {
        child: Child,
        readers: Vec<JoinHandle<()>>,
    },
    /// Held for its `Drop`, which stops the server.
    InProcess(#[allow(dead_code)] in_process::Server),
}

impl App {
    /// Starts the app of `target` configured by `envs` (over the harness defaults, as
    /// [`App::spawn`]).
    ///
    /// # Panics
    ///
    /// As [`App::spawn`], or when `envs` do not configure a valid app.
    pub async fn start(target: Target, envs: &[(&str, &str)]) -> Self {
        Self::start_with(target, envs, &[]).await
    }

    /// As [`App::start`], leaving out the variables in `unset` (see [`App::spawn_with`]).
    ///
    /// # Panics
    ///
    /// As [`App::start`].
    pub async fn start_with(target: Target, envs: &[(&str, &str)], unset: &[&str]) -> Self {
        match target {
            Target::Binary(framework) => Self::spawn_with(framework.binary(), envs, unset),
            Target::InProcess(framework) => {
                let defaults = [("SESSION_COOKIE_SECURE", "false")];
                let vars: Vec<(&str, &str)> = defaults
                    .iter()
                    .chain(envs)
                    .copied()
                    .filter(|(name, _)| !unset.contains(name))
                    .collect();
                let settings = Settings::from_lookup(0, |name| {
                    vars.iter()
                        .rev()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| (*v).to_owned())
                })
                .expect("valid settings");
                let demo = Demo::open(&settings)
                    .await
                    .expect("the configured store opens");
                Self::serve(framework, demo)
            }
        }
    }

    /// Serves `demo` with `framework` from inside this process: share one [`Demo`] between
    /// frameworks, or give it a store that counts calls or fails.
    #[must_use]
    pub fn serve(framework: Framework, demo: Demo) -> Self {
        let (server, addr) = in_process::Server::start(framework, demo);
        Self {
            runner: Runner::InProcess(server),
            base_url: format!("http://{addr}"),
            output: Arc::default(),
        }
    }

    /// Starts `binary_name` with `PORT=0`, `BIND=127.0.0.1`, `SESSION_COOKIE_SECURE=false`
    /// and then `envs` (which may override those), and waits for it to be ready.
    ///
    /// # Panics
    ///
    /// When the binary cannot be built or started, or prints no readiness line within
    /// [`READY_TIMEOUT`]; the panic message holds everything it printed.
    pub fn spawn(binary_name: &str, envs: &[(&str, &str)]) -> Self {
        Self::spawn_with(binary_name, envs, &[])
    }

    /// Like [`App::spawn`], but first leaves out the variables named in `unset`, even the
    /// defaults: `App::spawn_with("axum-app", &[], &["SESSION_COOKIE_SECURE"])` runs the
    /// app with its own default (a `Secure` cookie).
    ///
    /// # Panics
    ///
    /// As [`App::spawn`].
    pub fn spawn_with(binary_name: &str, envs: &[(&str, &str)], unset: &[&str]) -> Self {
        Self::spawn_inner(binary_name, envs, unset, None)
    }

    /// Like [`App::spawn`], with `dir` as the working directory (for programs that keep
    /// files beside them, such as the README's SQLite database).
    ///
    /// # Panics
    ///
    /// As [`App::spawn`].
    pub fn spawn_in(binary_name: &str, dir: &Path, envs: &[(&str, &str)]) -> Self {
        Self::spawn_inner(binary_name, envs, &[], Some(dir))
    }

    fn spawn_inner(
        binary_name: &str,
        envs: &[(&str, &str)],
        unset: &[&str],
        dir: Option<&Path>,
    ) -> Self {
        let binary = ensure_built(binary_name);
        let mut command = Command::new(&binary);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        for name in CONTRACT_ENV {
            command.env_remove(name);
        }
        let defaults = [
            ("PORT", "0"),
            ("BIND", "127.0.0.1"),
            ("SESSION_COOKIE_SECURE", "false"),
        ];
        for (name, value) in defaults.iter().chain(envs) {
            if !unset.contains(name) {
                command.env(name, value);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));

        let output = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(drain(stdout, lines_tx.clone(), Arc::clone(&output)));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(drain(stderr, lines_tx, Arc::clone(&output)));
        }

        let deadline = Instant::now() + READY_TIMEOUT;
        let base_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = parse_ready_line(&line) {
                        break format!("http://{addr}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{binary_name} printed no `{READY_MARKER}` line within {READY_TIMEOUT:?}; \
                         its output:\n{}",
                        lock(&output)
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait();
                    panic!(
                        "{binary_name} closed its output before it was ready ({status:?}); \
                         its output:\n{}",
                        lock(&output)
                    );
                }
            }
        };
        Self {
            runner: Runner::Process { child, readers },
            base_url,
            output,
        }
    }

    /// `http://ADDR:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Everything the app printed so far, stdout and stderr interleaved by line.
    pub fn output(&self) -> String {
        lock(&self.output).clone()
    }

    /// A fresh browser, with an empty cookie jar, that sends `user_agent`.
    pub fn browser(&self, user_agent: &str) -> Browser {
        Browser::new(&self.base_url, user_agent)
    }

    /// A browser signed in as the demo user `user` (password `USER-password`).
    ///
    /// ```no_run
    /// # async fn run() {
    /// let app = session_conformance::App::spawn("axum-app", &[]);
    /// let mut alice = app.signed_in("alice", "conformance-test/1.0").await;
    /// assert_eq!(alice.get("/me").await.json()["user_id"], "alice");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the login is not a 303 with the session cookie.
    pub async fn signed_in(&self, user: &str, user_agent: &str) -> Browser {
        let mut browser = self.browser(user_agent);
        browser
            .login(user, &format!("{user}-password"))
            .await
            .assert_status(303);
        assert!(browser.token().is_some(), "{user} has a session cookie");
        browser
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let Runner::Process { child, readers } = &mut self.runner else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        // The pipes close with the process; wait a little for the last lines, but never
        // hang on a reader (a grandchild could still hold a pipe).
        let deadline = Instant::now() + Duration::from_secs(1);
        while readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        for reader in readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        if thread::panicking() {
            eprintln!("--- output of the app at {} ---", self.base_url);
            eprintln!("{}", lock(&self.output));
        }
    }
}

fn lock(output: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads `pipe` line by line until it closes: each line goes to `output`, and to `lines`
/// while someone still listens there.
fn drain(
    pipe: impl Read + Send + 'static,
    lines: mpsc::Sender<String>,
    output: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    lock(&output).push_str(&line);
                    let _ = lines.send(line);
                }
            }
        }
    })
}

/// The address after [`READY_MARKER`] in `line`, if it has one: `127.0.0.1:43121` from
/// `INFO axum_app: listening on http://127.0.0.1:43121/`.
pub fn parse_ready_line(line: &str) -> Option<&str> {
    let start = line.find(READY_MARKER)? + READY_MARKER.len();
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\u{1b}')
        .unwrap_or(rest.len());
    let addr = rest[..end].trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != ']');
    (!addr.is_empty()).then_some(addr)
}

/// The path of `binary_name` in the target directory of the running test executable,
/// built first with `cargo build -p binary_name` (once per test process) so that the
/// suite never runs a stale binary.
///
/// Set `CONFORMANCE_NO_BUILD=1` to skip the build when the binary is already there.
///
/// # Panics
///
/// When the build fails or leaves no binary where the test executable's profile
/// directory says it should be.
pub fn ensure_built(binary_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    // .../target/<profile>/deps/<test>  →  .../target/<profile>
    let mut profile_dir = exe.parent().expect("the test executable's directory");
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().expect("the profile directory");
    }
    let binary = profile_dir.join(format!("{binary_name}{}", std::env::consts::EXE_SUFFIX));

    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if built.iter().any(|name| name == binary_name) {
        return binary;
    }
    let skip = std::env::var_os("CONFORMANCE_NO_BUILD").is_some_and(|v| v != "0");
    if !(skip && binary.is_file()) {
        cargo_build(binary_name, profile_dir);
    }
    assert!(
        binary.is_file(),
        "`cargo build -p {binary_name}` left no {}",
        binary.display()
    );
    built.push(binary_name.to_owned());
    binary
}

fn cargo_build(binary_name: &str, profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-p", binary_name]);
    if let Some(profile) = profile_dir.file_name().and_then(|p| p.to_str()) {
        match profile {
            "debug" => {}
            "release" => {
                command.arg("--release");
            }
            other => {
                command.args(["--profile", other]);
            }
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run `cargo build -p {binary_name}`: {e}"));
    assert!(
        out.status.success(),
        "`cargo build -p {binary_name}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
