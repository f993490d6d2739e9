//! Hostile traffic against the `herald` binary run under a tight file descriptor
//! limit, as an attacker on the same network would send it.

use std::{
    io::Write,
    net::TcpStream,
    process::{Command, Stdio},
};

use crate::support::{Server, get_status};

/// The descriptor limit the server runs under, soft and hard.
const NOFILE: u32 = 1024;
/// Idle connections the attacker holds: more than the server has descriptors.
const HELD: usize = 1100;

#[test]
fn health_answers_while_one_client_holds_more_idle_connections_than_the_fd_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={NOFILE}:{NOFILE}"))
        .arg(env!("CARGO_BIN_EXE_herald"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // Long enough that only the connection cap can explain an answer.
        .env("HERALD_SERVER__HEADER_READ_TIMEOUT_MS", "600000")
        .current_dir(dir.path())
        .stdin(Stdio::null());
    let server = Server::spawn(&mut cmd);

    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        // Every other one is a slowloris head that never completes.
        if i % 2 == 1 {
            stream.write_all(b"GET /api/v1/app HTTP/1.1\r\nHost: x\r\n").expect("write a partial head");
        }
        held.push(stream);
    }

    let status = get_status(server.addr, "/api/v1/health", None);
    assert!((200..300).contains(&status), "health answered {status}");
    println!(
        "hostile: {} connections held by one client against nofile={NOFILE}; health answered {status}",
        held.len()
    );
    assert!(server.terminate(), "SIGTERM is a clean exit");
}
