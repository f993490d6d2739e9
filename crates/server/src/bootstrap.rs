//! First-start auth: make sure someone can call the API.

use anyhow::{Context, bail};
use herald_core::{Clock, TokenId};
use herald_store::{Store, StoreError, TokenRecord};
use secrecy::{ExposeSecret, SecretString};

/// What [`bootstrap_admin_token`] did.
#[derive(Debug)]
pub enum Bootstrap {
    /// The configured `HERALD_ADMIN_TOKEN` is (now) stored as an admin token.
    Configured,
    /// No token configured, but an admin token exists already: nothing to do.
    Existing,
    /// No admin token existed: this one was minted and its hash stored. The caller
    /// shows it once; it is not recoverable afterwards.
    Minted(SecretString),
}

/// Ensures an admin token exists. With `configured` (`HERALD_ADMIN_TOKEN`), its hash
/// is stored as a server-wide token unless already there. Without it, and when the
/// store has no admin token yet, a new one is minted. Only hashes are stored.
///
/// # Errors
/// The store fails, or the configured token is already stored scoped to one app.
pub async fn bootstrap_admin_token(
    store: &dyn Store,
    configured: Option<&SecretString>,
    clock: &Clock,
) -> anyhow::Result<Bootstrap> {
    if let Some(token) = configured {
        let hash = herald_api::auth::hash_token(token.expose_secret());
        if let Some(found) = store.find_token(&hash).await.context("looking up HERALD_ADMIN_TOKEN")? {
            return match found.app_id {
                None => Ok(Bootstrap::Configured),
                Some(app) => bail!("HERALD_ADMIN_TOKEN is already stored as a token scoped to {app}; choose another"),
            };
        }
        let now = clock();
        let record = TokenRecord { id: TokenId::generate(now, &mut rand::rng()), hash, app_id: None, created_at: now };
        return match store.create_token(record).await {
            // Another node stored the same token at the same moment.
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(Bootstrap::Configured),
            Err(e) => Err(e).context("storing HERALD_ADMIN_TOKEN"),
        };
    }
    if store.has_admin_token().await.context("checking for an admin token")? {
        return Ok(Bootstrap::Existing);
    }
    let (token, record) = herald_api::auth::mint_token(None, clock(), &mut rand::rng());
    store.create_token(record).await.context("storing the generated admin token")?;
    Ok(Bootstrap::Minted(SecretString::from(token)))
}

/// The one-time notice for a generated token, printed to stdout (never logged).
pub fn minted_token_notice(token: &SecretString, public_url: &str) -> String {
    let token = token.expose_secret();
    format!(
        "Generated an admin token. It is shown only this once; only its hash is stored:\n\n\
         \x20   {token}\n\n\
         Try it:\n\
         \x20   export HERALD_TOKEN={token}\n\
         \x20   curl -H \"Authorization: Bearer $HERALD_TOKEN\" {public_url}/api/v1/app\n\n\
         To choose your own instead, set HERALD_ADMIN_TOKEN; for more tokens run `herald token create`.\n"
    )
}
