//! Running the built `herald` binary with a clean environment.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// How long a started server gets to print its address.
const STARTUP: Duration = Duration::from_secs(60);

/// `herald` with no inherited `HERALD_*` variables, run in `dir`.
pub fn herald(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.env_clear().current_dir(dir).stdin(Stdio::null());
    cmd
}

/// Runs a command to completion.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run herald")
}

/// A `herald serve` child process; killed if still running when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Everything printed on stdout before the address line.
    pub banner: Vec<String>,
}

impl Server {
    /// Starts `herald serve` on port 0 in `dir` and waits for its address line.
    pub fn start(dir: &Path) -> Self {
        Self::spawn(herald(dir).arg("serve"))
    }

    /// Runs `cmd` (a `herald serve` command) on port 0 and waits for its address line.
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .env("HERALD_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn herald serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + STARTUP;
        let mut banner = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("herald serve printed no address; stdout so far: {banner:#?}")
            });
            if let Some(addr) = line.strip_prefix("Herald listening on http://") {
                break addr.parse().expect("a socket address");
            }
            banner.push(line);
        };
        Self { child, addr, banner }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited 0.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success());
        self.child.wait().expect("wait for herald").success()
    }
}

impl Server {
    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGKILL (no chance to finish anything) and reaps the process.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL herald");
        self.child.wait().expect("wait for herald");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET; returns the status code.
pub fn get_status(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line")
}
