//! Bearer tokens: minting (`hld_` + 32 random bytes, base64url), hashing (hex SHA-256,
//! the only form stored), and the middleware that turns `Authorization: Bearer …` into
//! an [`Auth`] for the handlers, rate limiting each token on the way.
//!
//! A store failure during the lookup is a 503, never a 401: an outage must not look
//! like a revoked credential.

use std::time::{Duration, Instant};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use herald_core::{AppId, TokenId};
use herald_store::TokenRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Shared, cache::TokenHashCache, error::ApiError};

/// Prefix of every token Herald mints, so leaked tokens are recognisable.
pub const TOKEN_PREFIX: &str = "hld_";
/// How long a successful lookup is trusted without asking the store again.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(10);

/// Makes a new token: the plain text to show once, and the record to store.
pub fn mint_token(app_id: Option<AppId>, now: DateTime<Utc>, rng: &mut impl RngCore) -> (String, TokenRecord) {
    let mut raw = [0u8; 32];
    rng.fill_bytes(&mut raw);
    let plain = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
    let record = TokenRecord { id: TokenId::generate(now, rng), hash: hash_token(&plain), app_id, created_at: now };
    (plain, record)
}

/// Hex SHA-256 of a token's full text: the form tokens are stored and looked up in.
pub fn hash_token(plain: &str) -> String {
    hex(&Sha256::digest(plain.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Who is calling: the token's id and, for an application-scoped token, its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub token_id: TokenId,
    pub app_id: Option<AppId>,
}

impl Auth {
    /// Server-wide routes (event types, listing and creating applications) need an
    /// unscoped token.
    ///
    /// # Errors
    /// 403 for an application-scoped token.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.app_id {
            None => Ok(()),
            Some(_) => Err(ApiError::Forbidden("this token is limited to one application")),
        }
    }

    /// Whether this token may touch application `app`.
    ///
    /// # Errors
    /// 403 when the token is scoped to another application.
    pub fn check_app(&self, app: &AppId) -> Result<(), ApiError> {
        match &self.app_id {
            Some(own) if own != app => Err(ApiError::Forbidden("this token may not access this application")),
            _ => Ok(()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Put there by `authenticate`, which guards every route that takes `Auth`.
        parts.extensions.get::<Auth>().cloned().ok_or(ApiError::Unauthorized("missing bearer token"))
    }
}

/// Recently seen tokens, so most requests skip the store lookup.
pub(crate) type TokenCache = TokenHashCache<Auth>;

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized("missing bearer token"))?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized("invalid token"))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized("invalid token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("invalid token"));
    }
    Ok(token.trim())
}

async fn resolve(ctx: &Shared, headers: &HeaderMap) -> Result<Auth, ApiError> {
    let token = bearer(headers)?;
    let hash = hash_token(token);
    let now = Instant::now();
    if let Some(auth) = ctx.tokens.get(&hash, now) {
        return Ok(auth);
    }
    let record = ctx.store.find_token(&hash).await?.ok_or(ApiError::Unauthorized("invalid token"))?;
    let auth = Auth { token_id: record.id, app_id: record.app_id };
    ctx.tokens.put(hash, auth.clone(), now);
    Ok(auth)
}

/// Middleware: authenticates the request, applies the per-token rate limit, and leaves
/// the [`Auth`] in the request's extensions.
pub(crate) async fn authenticate(State(ctx): State<Shared>, mut req: Request, next: Next) -> Response {
    let auth = match resolve(&ctx, req.headers()).await {
        Ok(auth) => auth,
        Err(err) => return err.into_response(),
    };
    if let Some(limiter) = &ctx.limiter
        && let Err(wait) = limiter.check(auth.token_id.as_str(), Instant::now())
    {
        return ApiError::RateLimited { retry_after_secs: wait.as_secs_f64().ceil() as u64 }.into_response();
    }
    req.extensions_mut().insert(auth);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn minted_tokens_are_prefixed_random_and_stored_hashed() {
        let mut rng = StdRng::seed_from_u64(9);
        let (plain, record) = mint_token(None, Utc::now(), &mut rng);
        assert!(plain.starts_with(TOKEN_PREFIX));
        assert!(!plain.contains('.'));
        assert_eq!(plain.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(record.hash, hash_token(&plain));
        assert_ne!(record.hash, plain);
        let (other, _) = mint_token(None, Utc::now(), &mut rng);
        assert_ne!(plain, other);
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bearer_header_is_parsed_strictly() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer hld_x"));
        assert_eq!(bearer(&headers).unwrap(), "hld_x");
    }

    #[test]
    fn scoped_tokens_reach_only_their_app() {
        let mut rng = StdRng::seed_from_u64(2);
        let now = Utc::now();
        let (mine, other) = (AppId::generate(now, &mut rng), AppId::generate(now, &mut rng));
        let scoped = Auth { token_id: TokenId::generate(now, &mut rng), app_id: Some(mine.clone()) };
        assert!(scoped.check_app(&mine).is_ok());
        assert!(scoped.check_app(&other).is_err());
        assert!(scoped.require_admin().is_err());
        let admin = Auth { app_id: None, ..scoped };
        assert!(admin.check_app(&other).is_ok());
        assert!(admin.require_admin().is_ok());
    }
}
