//! The one-shot commands: `migrate`, `token create`, `healthcheck`, `verify`.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use herald_server::Config;
use herald_store::StoreError;

/// How long `healthcheck` waits for the server in all.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the configured database's schema, or brings it up to date.
///
/// # Errors
/// The database cannot be opened or migrated.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    println!("{}", herald_server::migrate(config).await?);
    Ok(())
}

/// Mints a token, stores its hash and returns its text. With `app` (an id or uid),
/// the token is scoped to that application, which must exist.
///
/// # Errors
/// The application does not exist or the store fails.
pub async fn token_create(config: &Config, app: Option<&str>) -> anyhow::Result<String> {
    let store = herald_server::open_store(config).await?;
    let app_id = match app {
        None => None,
        Some(key) => match store.get_application(key).await {
            Ok(app) => Some(app.id),
            Err(StoreError::NotFound(_)) => {
                bail!("no application {key:?} in {}", config.store.database_url)
            }
            Err(e) => return Err(anyhow!(e).context(format!("looking up application {key:?}"))),
        },
    };
    let (token, record) = herald_api::auth::mint_token(app_id, chrono::Utc::now(), &mut rand::rng());
    store.create_token(record).await.context("storing the token")?;
    Ok(token)
}

/// The URL `healthcheck` probes when none is given: the listen address, with
/// loopback for an all-interfaces address.
pub fn default_health_base(config: &Config) -> String {
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}

/// Sends `GET <base>/api/v1/health` over plain HTTP/1.1 and succeeds on a 2xx.
///
/// # Errors
/// The URL is not http, the server cannot be reached in time, or it answers non-2xx.
pub fn healthcheck(base: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(base).with_context(|| format!("invalid --url {base:?}"))?;
    if url.scheme() != "http" {
        bail!("invalid --url {base:?}: only http:// is supported");
    }
    let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let path = format!("{}/api/v1/health", url.path().trim_end_matches('/'));
    let addrs = url.socket_addrs(|| None).with_context(|| format!("resolving {authority}"))?;
    let addr = addrs.first().with_context(|| format!("{authority} resolves to no address"))?;

    let mut stream =
        TcpStream::connect_timeout(addr, HEALTHCHECK_TIMEOUT).with_context(|| format!("connecting to {authority}"))?;
    stream.set_read_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    stream.set_write_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: herald-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).context("sending the request")?;
    let mut head = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut head).context("reading the response")?;

    let status_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP response: {:?}", status_line.trim()))?;
    if !(200..300).contains(&status) {
        bail!("{base}{path} answered {status}");
    }
    Ok(())
}

/// Why `verify` did not succeed.
pub enum VerifyFailure {
    /// A key could not be read (exit 2: a usage error, not a verdict).
    Key(anyhow::Error),
    /// The body could not be read, or the signature does not verify (exit 1).
    Rejected(anyhow::Error),
}

/// Verifies a Standard Webhooks signature with Herald's own verifier (constant time,
/// `v1` and `v1a`) and prints the verdict.
///
/// # Errors
/// A malformed key, an unreadable body, or a signature that does not verify.
pub fn verify(args: &crate::args::VerifyArgs) -> Result<(), VerifyFailure> {
    // The key's text is never repeated in the message: it is a secret.
    let verifier = herald_signature::Verifier::parse(&args.secrets)
        .map_err(|e| VerifyFailure::Key(anyhow!("--secret: {e}")))?
        .with_tolerance(args.tolerance);
    let mut body = Vec::new();
    match args.body.as_deref().filter(|path| path.as_os_str() != "-") {
        Some(path) => {
            body = std::fs::read(path)
                .with_context(|| format!("cannot read the body from {}", path.display()))
                .map_err(VerifyFailure::Rejected)?;
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the body from standard input")
                .map_err(VerifyFailure::Rejected)?;
        }
    }
    let now = chrono::Utc::now().timestamp();
    verifier
        .verify_parts(&args.id, &args.timestamp, &args.signature, &body, now)
        .map_err(|e| VerifyFailure::Rejected(anyhow!("the signature does not verify: {e}")))?;
    println!("verified: {} ({} bytes)", args.id, body.len());
    Ok(())
}
