//! Real servers for the service tests, each on a free loopback port and
//! stopped when dropped: Prometheus with a backfilled public trace, Redis,
//! and `kedastral forecaster` processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::RunWithin;

/// A port nobody listened on a moment ago. Another process may take it
/// before the server that is given it binds it, so every server started on
/// one tries a few in turn until it binds one.
fn candidate_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// How many ports a server is tried on before the test gives up.
const PORT_ATTEMPTS: usize = 5;

/// Candidate ports for a server that cannot bind port 0 and report it.
fn candidate_ports() -> impl Iterator<Item = u16> {
    (0..PORT_ATTEMPTS).map(|_| candidate_port())
}

/// What became of one attempt to start a server on a port.
enum Started {
    Ready(Child),
    /// The port was taken between choosing it and binding it.
    PortTaken,
}

/// Waits until `ready` holds for the server `child` (logging to `log`), for
/// at most `limit`. A server that exits instead either lost its port to
/// another process, or fails the test with its log.
async fn await_ready<F, Fut>(
    what: &str,
    mut child: Child,
    log: &Path,
    limit: Duration,
    mut ready: F,
) -> Started
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if ready().await {
            return Started::Ready(child);
        }
        if let Some(status) = child.try_wait().expect("the server's status") {
            if said_port_taken(log) {
                return Started::PortTaken;
            }
            panic!(
                "{what} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            kill(&mut child);
            panic!(
                "{what} is not ready after {limit:?}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a server that exited said it could not bind its port.
fn said_port_taken(log: &Path) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains("address already in use")
}

/// A loopback address that takes connections and closes them at once, for a
/// dependency that is there but never answers. Lives as long as the runtime.
pub async fn closing_listener() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    addr.to_string()
}

fn require(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{program}` is not installed; scripts/test installs it (apt-get install prometheus redis-server openssl)")
    })
}

/// Polls `check` every 100 ms until it gives `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// GET `url`: the status and the body as JSON (or as a string when it is
/// not JSON); `None` when nothing answers.
pub async fn get(url: &str) -> Option<(u16, serde_json::Value)> {
    let response = http().get(url).send().await.ok()?;
    let status = response.status().as_u16();
    let text = response.text().await.ok()?;
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Some((status, body))
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A Prometheus server holding the bundled NASA trace, its minutes replayed
/// as seconds, as the series `nasa_requests{trace="nasa"}`. The trace ends
/// ten minutes in the future, so a query at any time during a test finds a
/// sample at that very second.
pub struct Prometheus {
    child: Option<Child>,
    scheme: &'static str,
    prefix: String,
    pub port: u16,
    _dir: tempfile::TempDir,
    /// Time of `values[0]`; one value a second.
    pub start: i64,
    pub values: Vec<f64>,
}

impl Prometheus {
    pub async fn with_trace(points: usize) -> Self {
        Self::start(support::nasa_tail(points).values, None).await
    }

    /// `values` as the series `nasa_requests`, one a second, the same way.
    pub async fn with_values(values: Vec<f64>) -> Self {
        Self::start(values, None).await
    }

    /// Served under `/prometheus`, over TLS with `web.tls` (a certificate
    /// for 127.0.0.1 signed by a CA of the test's own) and basic auth.
    pub async fn with_tls_and_auth(points: usize, web: &WebSecurity) -> Self {
        Self::start(support::nasa_tail(points).values, Some(web)).await
    }

    async fn start(values: Vec<f64>, web: Option<&WebSecurity>) -> Self {
        let prometheus = require("prometheus");
        let promtool = require("promtool");
        let now = chrono::Utc::now().timestamp();
        let start = now + 600 - values.len() as i64 + 1;
        let dir = tempfile::tempdir().unwrap();
        let mut om = String::from(
            "# HELP nasa_requests NASA web server requests per second.\n# TYPE nasa_requests gauge\n",
        );
        for (i, v) in values.iter().enumerate() {
            if v.is_finite() {
                om.push_str(&format!(
                    "nasa_requests{{trace=\"nasa\"}} {v} {}\n",
                    start + i as i64
                ));
            }
        }
        om.push_str("# EOF\n");
        let om_path = dir.path().join("trace.om");
        std::fs::write(&om_path, om).unwrap();
        let data = dir.path().join("data");
        let out = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&om_path)
            .arg(&data)
            .run_within(std::time::Duration::from_secs(120))
            .unwrap();
        assert!(
            out.status.success(),
            "promtool backfill failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
        let (scheme, prefix) = match web {
            None => ("http", ""),
            Some(_) => ("https", "/prometheus"),
        };
        let client = match web {
            None => http(),
            Some(web) => web.client(),
        };
        let log_path = dir.path().join("prometheus.log");
        for port in candidate_ports() {
            let log = std::fs::File::create(&log_path).unwrap();
            let mut command = Command::new(&prometheus);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=100y");
            if let Some(web) = web {
                let web_config = dir.path().join("web.yml");
                std::fs::write(&web_config, web.web_config()).unwrap();
                command
                    .arg(format!("--web.config.file={}", web_config.display()))
                    .arg(format!("--web.route-prefix={prefix}"))
                    .arg(format!(
                        "--web.external-url=https://127.0.0.1:{port}{prefix}"
                    ));
            }
            let child = command.stdout(Stdio::null()).stderr(log).spawn().unwrap();
            let ready_url = format!("{scheme}://127.0.0.1:{port}{prefix}/-/ready");
            let started = await_ready(
                "Prometheus",
                child,
                &log_path,
                Duration::from_secs(30),
                || {
                    let mut request = client.get(&ready_url);
                    if let Some(web) = web {
                        request = request.basic_auth(&web.user, Some(&web.password));
                    }
                    async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
                },
            )
            .await;
            if let Started::Ready(child) = started {
                return Self {
                    child: Some(child),
                    scheme,
                    prefix: prefix.to_owned(),
                    port,
                    _dir: dir,
                    start,
                    values,
                };
            }
        }
        panic!("Prometheus found its port taken {PORT_ATTEMPTS} times in a row")
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}{}", self.scheme, self.port, self.prefix)
    }

    /// The trace's value at time `t`.
    pub fn value_at(&self, t: i64) -> f64 {
        self.values[usize::try_from(t - self.start).expect("t within the trace")]
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `redis-server` without persistence.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    pub async fn start() -> Self {
        for port in candidate_ports() {
            let mut redis = Self {
                child: None,
                port,
                dir: tempfile::tempdir().unwrap(),
            };
            if let Started::Ready(child) = redis.launch().await {
                redis.child = Some(child);
                return redis;
            }
        }
        panic!("Redis found its port taken {PORT_ATTEMPTS} times in a row")
    }

    /// Starts the server again on the same port (empty: nothing persists).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        match self.launch().await {
            Started::Ready(child) => self.child = Some(child),
            Started::PortTaken => panic!(
                "port {} was taken while Redis was down; the test needs it back",
                self.port
            ),
        }
    }

    async fn launch(&self) -> Started {
        let log_path = self.dir.path().join("redis.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(require("redis-server"))
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let client = self.client();
        await_ready("Redis", child, &log_path, Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                let Ok(mut c) = client.get_multiplexed_async_connection().await else {
                    return false;
                };
                redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            }
        })
        .await
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://{}", self.addr())).unwrap()
    }

    /// The value at `key`, `None` when absent or Redis is down.
    pub async fn get(&self, key: &str) -> Option<String> {
        let mut c = self
            .client()
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        redis::cmd("GET").arg(key).query_async(&mut c).await.ok()?
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `kedastral` service process: `forecaster`, `scaler` or `run`.
pub struct Kedastral {
    child: Option<Child>,
    /// HTTP (`--listen`).
    pub port: u16,
    /// gRPC (`--grpc-listen`), for `scaler` and `run`.
    pub grpc_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

pub type Forecaster = Kedastral;

impl Kedastral {
    /// Starts `kedastral forecaster ARGS` on a port of its choosing and
    /// waits for `/healthz`.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_on("forecaster", 0, args).await
    }

    /// Starts `kedastral COMMAND ARGS --listen 127.0.0.1:PORT` (and
    /// `--grpc-listen` for `scaler` and `run`) and waits for `/healthz`.
    /// Port 0 lets the process bind any free port; the ports it bound are
    /// read back from its start-up line, so no port number is guessed.
    pub async fn start_on(command: &str, port: u16, args: &[&str]) -> Self {
        tokio::task::spawn_blocking(support::warm_model_cache)
            .await
            .expect("warming the model cache");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kedastral.log");
        let mut process = Command::new(env!("CARGO_BIN_EXE_kedastral"));
        process.arg(command).args(args);
        if command != "forecaster" {
            process.args(["--grpc-listen", "127.0.0.1:0"]);
        }
        let child = process
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--log-level", "debug,wasmtime=warn,cranelift=warn"])
            .env("KEDASTRAL_MODEL_CACHE_DIR", support::cache_dir())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut forecaster = Self {
            child: Some(child),
            port,
            grpc_port: 0,
            log,
            _dir: dir,
        };
        let started = Instant::now();
        let (http, grpc) = loop {
            let log = forecaster.log();
            let line = log.lines().find(|l| {
                l.contains("forecaster started")
                    || l.contains("scaler started")
                    || l.contains("kedastral running")
            });
            if let Some(line) = line {
                let http = bound_port(line, &["listen=", "http="]).expect("the HTTP port");
                break (http, bound_port(line, &["grpc="]));
            }
            if let Some(status) = forecaster.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("kedastral {command} exited with {status}: {log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kedastral {command} did not start: {log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        forecaster.port = http;
        forecaster.grpc_port = grpc.unwrap_or(0);
        let health = forecaster.url("/healthz");
        eventually(
            &format!("kedastral {command} answering /healthz"),
            Duration::from_secs(30),
            || async { get(&health).await.filter(|(s, _)| *s == 200) },
        )
        .await;
        forecaster
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /forecast/current?workload=W` once it answers 200.
    pub async fn forecast(&self, workload: &str) -> serde_json::Value {
        let url = self.url(&format!("/forecast/current?workload={workload}"));
        eventually(
            &format!("a forecast of {workload}"),
            Duration::from_secs(30),
            || async { get(&url).await.filter(|(s, _)| *s == 200).map(|(_, b)| b) },
        )
        .await
    }

    /// The value of the sample `series` (name and labels as exposed) on
    /// `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = get(&self.url("/metrics")).await?;
        let text = body.as_str()?.to_owned();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// Sends SIGHUP: read the configuration again.
    pub fn hang_up(&self) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: the process dies without cleaning up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }
}

impl Drop for Kedastral {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The port of the first `KEY=127.0.0.1:PORT` field of a log line for any
/// of `keys`.
fn bound_port(line: &str, keys: &[&str]) -> Option<u16> {
    keys.iter().find_map(|key| {
        let at = line.find(&format!("{key}127.0.0.1:"))?;
        let rest = &line[at + key.len() + "127.0.0.1:".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

/// Writes `text` to `name` in `dir`.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `openssl ARGS` in `dir`, failing the test if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(require("openssl"))
        .args(args)
        .current_dir(dir)
        .run_within(std::time::Duration::from_secs(120))
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a basic-auth
/// user, made with the `openssl` command and the `bcrypt` crate.
pub struct WebSecurity {
    pub dir: tempfile::TempDir,
    pub user: String,
    pub password: String,
}

impl WebSecurity {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| openssl(dir.path(), args);
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kedastral test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
        Self {
            dir,
            user: "kedastral".into(),
            password: "s3cret pass".into(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn web_config(&self) -> String {
        let hash = bcrypt::hash(&self.password, 4).unwrap();
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {}: '{hash}'\n",
            self.dir.path().join("server.pem").display(),
            self.dir.path().join("server.key").display(),
            self.user,
        )
    }

    fn client(&self) -> reqwest::Client {
        let ca = std::fs::read(self.ca()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }
}

impl WebSecurity {
    /// A client certificate signed by the same CA, for mutual TLS.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        let dir = self.dir.path();
        let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
        if !cert.exists() {
            let run = |args: &[&str]| openssl(dir, args);
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=keda",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
            ]);
            std::fs::write(
                dir.join("client.ext"),
                "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
            )
            .unwrap();
            run(&[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "client.ext",
                "-out",
                "client.pem",
            ]);
        }
        (cert, key)
    }

    pub fn server_cert(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.pem"),
            self.dir.path().join("server.key"),
        )
    }
}

/// Python stubs for `proto/externalscaler.proto`, generated once per run by
/// grpc_tools (PyPI `grpcio-tools`).
fn python_stubs() -> &'static Path {
    static STUBS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    STUBS.get_or_init(|| {
        let out = support::workspace()
            .join("target")
            .join("test-python-stubs");
        std::fs::create_dir_all(&out).unwrap();
        let proto = support::workspace().join("proto");
        let status = Command::new("python3")
            .args(["-m", "grpc_tools.protoc"])
            .arg(format!("-I{}", proto.display()))
            .arg(format!("--python_out={}", out.display()))
            .arg(format!("--grpc_python_out={}", out.display()))
            .arg(proto.join("externalscaler.proto"))
            .status()
            .expect("python3");
        assert!(
            status.success(),
            "generating Python stubs failed: scripts/test installs grpcio and grpcio-tools in target/venv"
        );
        out
    })
}

/// How the Python client connects.
#[derive(Clone, Default)]
pub struct ClientTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<(PathBuf, PathBuf)>,
}

/// Runs the independent Python KEDA client against `port` with the trigger
/// metadata `meta` and the given calls; one JSON answer per call.
pub async fn keda(
    port: u16,
    tls: &ClientTls,
    meta: &[(&str, &str)],
    calls: &[&str],
) -> Vec<serde_json::Value> {
    let stubs = python_stubs().to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/keda_client.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg("--stubs")
        .arg(stubs)
        .args(["--target", &format!("127.0.0.1:{port}")]);
    if let Some(ca) = &tls.ca {
        command.arg("--ca").arg(ca);
    }
    if let Some((cert, key)) = &tls.cert {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    for (k, v) in meta {
        command.args(["--meta", &format!("{k}={v}")]);
    }
    command.args(calls);
    let out = tokio::task::spawn_blocking(move || {
        command
            .run_within(Duration::from_secs(120))
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "keda_client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_server_that_finds_its_port_taken_is_retried_not_failed() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = Redis {
        child: None,
        port: holder.local_addr().unwrap().port(),
        dir: tempfile::tempdir().unwrap(),
    };
    assert!(matches!(taken.launch().await, Started::PortTaken));
    let mut redis = Redis::start().await;
    assert_ne!(redis.port, taken.port);
    redis.stop();
}
