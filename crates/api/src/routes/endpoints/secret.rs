//! An endpoint's signing secrets: get the current key, rotate to a new one (given or
//! generated) while the old ones keep signing for a grace period, at most ten at once.
//! The ingest endpoint routes use the same steps (`current_key`, `rotate_and_store`).

use axum::extract::State;
use chrono::TimeDelta;
use herald_core::{
    ValidationError,
    model::{Endpoint, EndpointSecret},
    validate::Checker,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::load_endpoint;
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Validate},
    params::AppEndpointPath,
};

/// Most rotated secrets kept signing at once.
const MAX_OLD_SECRETS: usize = 10;
/// Grace period of a rotated secret when the request names none.
pub const DEFAULT_GRACE_SECONDS: u32 = 86_400;
/// Longest accepted grace period (7 days).
pub const MAX_GRACE_SECONDS: u32 = 604_800;

/// The current signing secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointSecretOut {
    #[schema(example = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]
    pub key: String,
}

/// A rotation: the new key (generated when absent) and how long the old one stays valid.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecretRotateIn {
    #[serde(default)]
    pub key: Option<String>,
    /// How long the old secret will be valid for, in seconds (0 to 7 days).
    #[serde(default)]
    #[schema(format = "uint32", minimum = 0, maximum = 604800, default = 86400)]
    pub grace_period_seconds: Option<u32>,
}

impl Validate for EndpointSecretRotateIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        if let Some(key) = &self.key {
            check.rule(&["body", "key"], EndpointSecret::parse(key).map(|_| ()));
        }
        if let Some(grace) = self.grace_period_seconds {
            check.check(
                grace <= MAX_GRACE_SECONDS,
                &["body", "gracePeriodSeconds"],
                format!("gracePeriodSeconds must be at most {MAX_GRACE_SECONDS}"),
            );
        }
        check.finish()
    }
}

/// Get Endpoint Secret: the key currently used to sign.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", operation_id = "v1.endpoint.get-secret", tag = "Endpoint",
    params(AppEndpointPath),
    responses((status = 200, body = EndpointSecretOut)))]
pub(crate) async fn get_secret(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
) -> Result<axum::Json<EndpointSecretOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    Ok(axum::Json(EndpointSecretOut { key: current_key(&endpoint)? }))
}

/// The key an endpoint's requests are signed with now.
pub(crate) fn current_key(endpoint: &Endpoint) -> Result<String, ApiError> {
    let current = endpoint
        .current_secret()
        .ok_or_else(|| ApiError::Internal(format!("endpoint {} has no current secret", endpoint.id).into()))?;
    Ok(current.key.clone())
}

/// Rotate Endpoint Secret: the new key signs from now on; the old one keeps signing
/// alongside it for the grace period.
///
/// The contract documents 204, but the official SDKs (svix 2.9) parse the new secret
/// from the body, so Herald answers 200 with it; clients that expect 204 only check 2xx.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", operation_id = "v1.endpoint.rotate-secret", tag = "Endpoint",
    params(AppEndpointPath, ("idempotency-key" = Option<String>, Header)),
    request_body = EndpointSecretRotateIn,
    responses((status = 200, description = "The new current secret", body = EndpointSecretOut)))]
pub(crate) async fn rotate_secret(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
    Json(input): Json<EndpointSecretRotateIn>,
) -> Result<axum::Json<EndpointSecretOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    let key = rotate_and_store(&ctx, endpoint, &input).await?;
    Ok(axum::Json(EndpointSecretOut { key }))
}

/// Gives `endpoint` the requested key (a generated one when none is given), keeps the
/// old ones for the grace period, stores it, and returns the new key.
pub(crate) async fn rotate_and_store(
    ctx: &Shared,
    mut endpoint: Endpoint,
    input: &EndpointSecretRotateIn,
) -> Result<String, ApiError> {
    let new = match &input.key {
        Some(key) => EndpointSecret::parse(key).map_err(|msg| ApiError::invalid(&["body", "key"], msg))?,
        None => EndpointSecret::generate(&mut rand::rng()),
    };
    let now = ctx.now();
    let grace = TimeDelta::seconds(i64::from(input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS)));
    let key = new.key.clone();
    endpoint.secrets = rotate(std::mem::take(&mut endpoint.secrets), new, now, grace);
    endpoint.updated_at = now;
    ctx.store.update_endpoint(endpoint).await?;
    Ok(key)
}

/// The secrets after a rotation: `new` first, then the unexpired old ones (the one
/// current until now expiring after `grace`), newest first, at most ten. A key equal
/// to the new one is not kept twice.
pub(crate) fn rotate(
    secrets: Vec<EndpointSecret>,
    new: EndpointSecret,
    now: chrono::DateTime<chrono::Utc>,
    grace: TimeDelta,
) -> Vec<EndpointSecret> {
    let mut old: Vec<EndpointSecret> = secrets
        .into_iter()
        .map(|s| EndpointSecret { expires_at: Some(s.expires_at.unwrap_or(now + grace)), ..s })
        .filter(|s| s.expires_at.is_some_and(|at| at > now) && s.key != new.key)
        .collect();
    old.sort_by_key(|s| std::cmp::Reverse(s.expires_at));
    old.truncate(MAX_OLD_SECRETS);
    let mut out = Vec::with_capacity(old.len() + 1);
    out.push(EndpointSecret { expires_at: None, ..new });
    out.extend(old);
    out
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn rotation_keeps_old_secrets_for_the_grace_period_only() {
        let mut rng = StdRng::seed_from_u64(5);
        let now = Utc::now();
        let first = EndpointSecret::generate(&mut rng);
        let second = EndpointSecret::generate(&mut rng);
        let secrets = rotate(vec![first.clone()], second.clone(), now, TimeDelta::hours(1));
        assert_eq!(secrets[0], second);
        assert_eq!(secrets[1].key, first.key);
        assert_eq!(secrets[1].expires_at, Some(now + TimeDelta::hours(1)));

        // Two hours later the first has expired and is dropped; grace 0 drops at once.
        let later = now + TimeDelta::hours(2);
        let third = EndpointSecret::generate(&mut rng);
        let secrets = rotate(secrets, third.clone(), later, TimeDelta::zero());
        assert_eq!(secrets, vec![third]);
    }

    #[test]
    fn at_most_ten_old_secrets_are_kept() {
        let mut rng = StdRng::seed_from_u64(6);
        let now = Utc::now();
        let mut secrets = vec![EndpointSecret::generate(&mut rng)];
        for i in 0..15 {
            let t = now + TimeDelta::seconds(i);
            secrets = rotate(secrets, EndpointSecret::generate(&mut rng), t, TimeDelta::days(1));
        }
        assert_eq!(secrets.len(), 1 + MAX_OLD_SECRETS);
        assert_eq!(secrets.iter().filter(|s| s.expires_at.is_none()).count(), 1);
    }
}
