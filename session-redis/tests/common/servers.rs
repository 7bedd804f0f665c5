//! Private servers for the tests that need them: a Redis Cluster of 3 masters with a
//! replica each, and a Redis with TLS and an ACL user, started from the installed binaries
//! on free ports (never 6379), stopped (SIGKILL) and their files removed on drop.
//!
//! Without the binaries a test prints why it is skipped and passes, unless
//! `REDIS_CLUSTER_TESTS=1`, which makes their absence a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

/// Whether `REDIS_CLUSTER_TESTS=1` asks these tests to run whatever it takes.
pub fn required() -> bool {
    std::env::var("REDIS_CLUSTER_TESTS").is_ok_and(|v| v.trim() == "1")
}

/// Whether every binary runs (`BIN ARG`); otherwise prints why the test is skipped, or
/// panics when [`required`].
pub fn available(bins: &[(&str, &str)]) -> bool {
    for (bin, arg) in bins {
        let runs = Command::new(bin)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !runs {
            assert!(!required(), "REDIS_CLUSTER_TESTS=1 but {bin} does not run");
            println!("skipping: {bin} is not on the PATH");
            return false;
        }
    }
    true
}

/// A directory of the test's own, deleted on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "session-redis-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free port whose cluster bus port (port + 10 000) is free too.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// One `redis-server` process.
pub struct Node {
    pub port: u16,
    child: Option<Child>,
}

impl Node {
    fn start(port: u16, dir: &Path, extra: &[String]) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join(format!("redis-{port}.log")))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        Self {
            port,
            child: Some(child),
        }
    }

    /// Kills the process (SIGKILL): a crash, as far as the cluster can tell.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A connection to `url` that waits for the server to answer (10 s at most).
pub async fn wait_ready(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).expect("a redis URL");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        if let Ok(mut conn) = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return conn;
        }
        assert!(Instant::now() < until, "{url} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Redis Cluster: 3 masters, each with a replica, a node timeout of 1 s (quick
/// failovers).
pub struct Cluster {
    pub nodes: Vec<Node>,
    _dir: TempDir,
}

/// A node's line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    pub slots: Vec<(u16, u16)>,
}

impl Cluster {
    pub async fn start() -> Self {
        let dir = TempDir::new("cluster");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            let conf = format!("nodes-{port}.conf");
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
                "--cluster-node-timeout",
                "1000",
                // A replica syncs at once (by default a master waits 5 s for more
                // replicas), so that it can take over when the test kills its master.
                "--repl-diskless-sync-delay",
                "0",
            ]
            .map(str::to_owned);
            nodes.push(Node::start(port, dir.path(), &extra));
        }
        for node in &nodes {
            wait_ready(&node.url()).await;
        }
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_healthy(None).await;
        cluster
    }

    /// The URL of a node that is up.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a node up")
            .url()
    }

    /// `CLUSTER NODES` as one live node sees it.
    pub async fn topology(&self) -> Vec<NodeInfo> {
        let mut conn = wait_ready(&self.url()).await;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .unwrap();
        text.lines()
            .filter_map(|line| {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let port = parts
                    .get(1)?
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                let flags = parts.get(2)?;
                let slots = parts[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .filter_map(|s| {
                        let (a, b) = s.split_once('-').unwrap_or((s, s));
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect();
                Some(NodeInfo {
                    port,
                    master: flags.contains("master"),
                    failed: flags.contains("fail"),
                    slots,
                })
            })
            .collect()
    }

    /// The master serving `slot` now.
    pub async fn master_of(&self, slot: u16) -> Option<u16> {
        self.topology()
            .await
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|(a, b)| *a <= slot && slot <= *b)
            })
            .map(|n| n.port)
    }

    /// Kills the node on `port`.
    pub fn kill(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of the cluster")
            .kill();
    }

    /// Waits (30 s at most) until every live node says `cluster_state:ok`, every master is
    /// up and, before any node died, every replica is in sync with its master; given a dead
    /// node, until none of its slots is served by it.
    pub async fn wait_healthy(&self, dead: Option<u16>) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if self.healthy(dead).await {
                return;
            }
            assert!(Instant::now() < until, "the cluster did not settle");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn healthy(&self, dead: Option<u16>) -> bool {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let mut conn = wait_ready(&node.url()).await;
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .unwrap();
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                return false;
            }
        }
        let topology = self.topology().await;
        let masters: Vec<&NodeInfo> = topology
            .iter()
            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
            .collect();
        let covered: u32 = masters
            .iter()
            .flat_map(|n| &n.slots)
            .map(|(a, b)| u32::from(b - a) + 1)
            .sum();
        if covered != 16_384 || masters.iter().any(|n| Some(n.port) == dead) {
            return false;
        }
        if dead.is_none() {
            let replicas = topology.iter().filter(|n| !n.master && !n.failed);
            if replicas.clone().count() != 3 {
                return false;
            }
            for replica in replicas {
                let mut conn = wait_ready(&format!("redis://127.0.0.1:{}", replica.port)).await;
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                if !info.lines().any(|l| l.trim() == "master_link_status:up") {
                    return false;
                }
            }
        }
        true
    }
}

/// A Redis listening only on TLS (a certificate from a test CA made with `openssl`), with
/// the default user disabled and one ACL user, `sessions`, password [`TlsRedis::PASSWORD`].
pub struct TlsRedis {
    pub port: u16,
    pub ca_file: PathBuf,
    _node: Node,
    _dir: TempDir,
}

impl TlsRedis {
    pub const PASSWORD: &'static str = "tls-test-password-7f3a";

    pub fn start() -> Self {
        let dir = TempDir::new("tls");
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=session-redis test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ]);
        let port = free_port();
        let path = |f: &str| d.join(f).display().to_string();
        let extra = [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            path("server.pem"),
            "--tls-key-file".to_owned(),
            path("server.key"),
            "--tls-ca-cert-file".to_owned(),
            path("ca.pem"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
            "--user".to_owned(),
            "default".to_owned(),
            "off".to_owned(),
            "--user".to_owned(),
            "sessions".to_owned(),
            "on".to_owned(),
            format!(">{}", Self::PASSWORD),
            "~*".to_owned(),
            "&*".to_owned(),
            "+@all".to_owned(),
        ];
        // `--port 0` first: the node's own `--port` comes before `extra` and is overridden.
        let node = Node::start(0, d, &extra);
        let node = Node {
            port,
            child: node.child_taken(),
        };
        Self {
            port,
            ca_file: d.join("ca.pem"),
            _node: node,
            _dir: dir,
        }
    }

    /// `rediss://sessions:PASSWORD@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!(
            "rediss://sessions:{}@127.0.0.1:{}",
            Self::PASSWORD,
            self.port
        )
    }
}

impl Node {
    fn child_taken(mut self) -> Option<Child> {
        self.child.take()
    }
}
