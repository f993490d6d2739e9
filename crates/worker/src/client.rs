//! The guarded outbound HTTP client (SECURITY.md, "Outbound requests"): one shared `reqwest::Client`
//! that follows no redirects, ignores proxy variables, and resolves names through
//! [`GuardedResolver`], which keeps only addresses that pass
//! [`herald_core::net::check_ip`]. The client connects to an address from that filtered
//! list and never looks the name up again, so a DNS answer cannot be swapped between
//! the check and the connection. IP-literal URLs never reach a resolver, so
//! [`GuardedClient::send`] judges every URL with [`check_url`] first.
//!
//! What to send (signing) and what a response means (retries) belong to other modules.

use std::{
    error::Error as StdError,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use herald_core::net::{AllowList, Refusal, UrlRefusal, check_ip, check_url};
use reqwest::{
    StatusCode,
    dns::{Addrs, Name, Resolve, Resolving},
    header::{HeaderMap, RETRY_AFTER},
};

use crate::config::WorkerConfig;

/// What Herald sends in `user-agent`.
pub const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// Idle keep-alive connections kept per host; enough for the per-endpoint cap's worth
/// of bursts without holding sockets open to every endpoint ever seen.
const IDLE_CONNECTIONS_PER_HOST: usize = 32;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request was not sent to its destination: the SSRF guard refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationRefused {
    /// The URL itself is refused (scheme, malformed host, loopback name, blocked literal).
    #[error(transparent)]
    Url(#[from] UrlRefusal),
    /// Every address the name resolved to is refused; the first refusal is kept.
    #[error("`{host}` resolves only to refused addresses ({refusal})")]
    AllAddressesRefused {
        /// The name looked up.
        host: String,
        /// Why its first address was refused.
        refusal: Refusal,
    },
}

/// A resolver that drops every address the SSRF guard refuses. A name with no address
/// left fails to resolve with [`DestinationRefused`], so nothing is sent.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl GuardedResolver {
    /// A resolver that lets through only addresses [`check_ip`] accepts with `allow`.
    pub fn new(allow: Arc<AllowList>) -> Self {
        Self { allow }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // getaddrinfo through tokio's blocking pool; the port is set by the connector.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs = filter_addresses(&host, found, &allow)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Keeps the addresses `allow` accepts, in the resolver's order.
///
/// # Errors
/// [`DestinationRefused::AllAddressesRefused`] when none is left.
fn filter_addresses(
    host: &str,
    found: Vec<SocketAddr>,
    allow: &AllowList,
) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
    let mut first_refusal = None;
    let mut kept = Vec::with_capacity(found.len());
    for addr in found {
        match check_ip(addr.ip(), allow) {
            Ok(()) => kept.push(addr),
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    match (kept.is_empty(), first_refusal) {
        (false, _) => Ok(kept),
        (true, Some(refusal)) => {
            Err(Box::new(DestinationRefused::AllAddressesRefused { host: host.to_owned(), refusal }))
        }
        (true, None) => Err(format!("`{host}` did not resolve to any address").into()),
    }
}

/// A request ready to go: the signing step produced it.
#[derive(Debug)]
pub(crate) struct OutboundRequest {
    pub url: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// What came back from one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// The receiver answered (any status).
    Response {
        status: StatusCode,
        /// The raw `Retry-After` value, when present.
        retry_after: Option<String>,
        /// The first bytes of the body, up to the configured cap.
        body: String,
    },
    /// Nothing usable came back: refused by the guard, DNS, connection, timeout.
    NoResponse { reason: String },
}

/// The shared outbound client. Cheap to share behind an `Arc`; build it once.
#[derive(Debug)]
pub(crate) struct GuardedClient {
    http: reqwest::Client,
    allow: Arc<AllowList>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl GuardedClient {
    /// Builds the client from the worker settings.
    pub fn new(config: &WorkerConfig) -> Result<Self, reqwest::Error> {
        let allow = Arc::new(config.allow_cidrs.clone());
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(allow.clone())))
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(Self { http, allow, timeout: config.request_timeout, max_response_bytes: config.max_response_bytes })
    }

    /// Sends one POST and reads at most the configured number of body bytes. Returns
    /// what happened and how long it took; never an error, since every failure is an
    /// attempt outcome.
    pub async fn send(&self, request: OutboundRequest) -> (Exchange, Duration) {
        let started = Instant::now();
        let exchange = match check_url(&request.url, &self.allow) {
            Err(refusal) => Exchange::NoResponse { reason: refused(&DestinationRefused::Url(refusal)) },
            Ok(_) => self.post(request).await,
        };
        (exchange, started.elapsed())
    }

    async fn post(&self, request: OutboundRequest) -> Exchange {
        let sent = self.http.post(request.url).headers(request.headers).body(request.body).send().await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return Exchange::NoResponse { reason: self.describe(&error) },
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        // Read only what is kept; an endpoint cannot make us buffer more by answering
        // with a huge body. A body cut short by an error still counts: the status came.
        while body.len() < self.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(self.max_response_bytes - body.len());
                    body.extend_from_slice(&chunk[..take]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        Exchange::Response { status, retry_after, body: String::from_utf8_lossy(&body).into_owned() }
    }

    /// A reason for the attempt log, without the URL (which is logged beside it).
    fn describe(&self, error: &reqwest::Error) -> String {
        if let Some(refusal) = find_source::<DestinationRefused>(error) {
            return refused(refusal);
        }
        if error.is_timeout() {
            return format!("no response within {} ms", self.timeout.as_millis());
        }
        let cause = root_cause(error);
        if error.is_connect() { format!("connection failed: {cause}") } else { format!("request failed: {cause}") }
    }
}

fn refused(refusal: &DestinationRefused) -> String {
    format!("destination refused by the SSRF guard: {refusal}")
}

fn find_source<'e, T: StdError + 'static>(error: &'e (dyn StdError + 'static)) -> Option<&'e T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn allowed(ip: IpAddr, allow: &AllowList) -> bool {
        check_ip(ip, allow).is_ok()
    }

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 0)
    }

    #[test]
    fn resolved_addresses_are_filtered_not_all_or_nothing() {
        let none = AllowList::default();
        let kept = filter_addresses("mixed.example", vec![addr("127.0.0.1"), addr("93.184.215.14")], &none).unwrap();
        assert_eq!(kept, vec![addr("93.184.215.14")]);
    }

    #[test]
    fn a_name_with_only_refused_addresses_fails_with_the_reason() {
        let none = AllowList::default();
        let err = filter_addresses("rebind.example", vec![addr("10.0.0.1"), addr("::1")], &none).unwrap_err();
        let refused = err.downcast_ref::<DestinationRefused>().expect("a refusal");
        assert!(refused.to_string().contains("private address 10.0.0.1"), "{refused}");
    }

    #[test]
    fn the_allow_list_opens_exactly_its_ranges_and_never_metadata() {
        let allow: AllowList = "127.0.0.1/32, 169.254.0.0/16".parse().unwrap();
        assert!(allowed("127.0.0.1".parse().unwrap(), &allow));
        assert!(!allowed("127.0.0.2".parse().unwrap(), &allow));
        assert!(!allowed("169.254.169.254".parse().unwrap(), &allow));
        assert!(!allowed("::ffff:169.254.169.254".parse().unwrap(), &allow));
        let kept = filter_addresses("x", vec![addr("169.254.169.254"), addr("169.254.1.1")], &allow).unwrap();
        assert_eq!(kept, vec![addr("169.254.1.1")]);
    }

    #[test]
    fn an_empty_answer_is_an_error() {
        assert!(filter_addresses("void.example", Vec::new(), &AllowList::default()).is_err());
    }
}
