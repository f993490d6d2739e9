//! `herald serve`, `token create`, `migrate` and `healthcheck` as processes.

use herald_server::config::SETTINGS;

use crate::support::{Server, get_status, herald, output};

#[test]
fn serve_help_documents_every_setting_by_env_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(herald(dir.path()).args(["serve", "--help"]));
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for setting in SETTINGS {
        assert!(help.contains(setting.env), "{} missing from:\n{help}", setting.env);
    }
    for flag in ["--listen", "--database-url", "--config", "--retry-schedule", "--allow-cidrs"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_bad_retry_schedule_exits_2_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(herald(dir.path()).arg("serve").env("HERALD_RETRY_SCHEDULE", "5x"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("HERALD_RETRY_SCHEDULE") && stderr.contains("5x"), "{stderr}");
    assert!(!dir.path().join("herald.db").exists(), "nothing is created on bad config");
}

#[test]
fn a_bad_flag_value_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(herald(dir.path()).args(["serve", "--listen", "nowhere"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn first_start_prints_a_token_once_and_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();

    let server = Server::start(dir.path());
    let banner = server.banner.join("\n");
    let token = server
        .banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("export HERALD_TOKEN="))
        .unwrap_or_else(|| panic!("no token hint in:\n{banner}"))
        .to_owned();
    assert!(dir.path().join("herald.db").exists(), "default sqlite://herald.db, relative to the working dir");
    assert!((200..300).contains(&get_status(server.addr, "/api/v1/health", None)));
    assert_eq!(get_status(server.addr, "/api/v1/app", Some(&token)), 200);
    assert_eq!(get_status(server.addr, "/api/v1/app", None), 401);

    let health = output(herald(dir.path()).args(["healthcheck", "--url", &format!("http://{}", server.addr)]));
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));

    assert!(server.terminate(), "SIGTERM is a clean exit");

    // Second start on the same database: no new token.
    let server = Server::start(dir.path());
    assert!(server.banner.iter().all(|l| !l.contains("HERALD_TOKEN")), "{:#?}", server.banner);
    assert_eq!(get_status(server.addr, "/api/v1/app", Some(&token)), 200, "the first token still works");
    assert!(server.terminate());

    // The plain token was never written to disk.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "plain token on disk");
    }
}

#[test]
fn a_configured_admin_token_works_and_no_token_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let token = "configured-admin-token-1234567890";
    let server = Server::spawn(herald(dir.path()).arg("serve").env("HERALD_ADMIN_TOKEN", token));
    assert!(server.banner.iter().all(|l| !l.contains("HERALD_TOKEN")), "{:#?}", server.banner);
    assert_eq!(get_status(server.addr, "/api/v1/app", Some(token)), 200);
}

#[test]
fn token_create_prints_a_working_token_and_checks_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = output(herald(dir.path()).args(["migrate", "--database-url", "sqlite://data.db"]));
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));

    let out = output(herald(dir.path()).args(["token", "create", "--database-url", "sqlite://data.db"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("hld_"), "{token}");

    let out = output(herald(dir.path()).args([
        "token",
        "create",
        "--database-url",
        "sqlite://data.db",
        "--app",
        "app_missing",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("app_missing"));

    let server = Server::spawn(herald(dir.path()).args(["serve", "--database-url", "sqlite://data.db"]));
    assert!(server.banner.iter().all(|l| !l.contains("HERALD_TOKEN")), "the created token is an admin token");
    assert_eq!(get_status(server.addr, "/api/v1/app", Some(&token)), 200);
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    // Bind and drop to find a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = output(herald(dir.path()).args(["healthcheck", "--url", &format!("http://127.0.0.1:{port}")]));
    assert_eq!(out.status.code(), Some(1));
}
