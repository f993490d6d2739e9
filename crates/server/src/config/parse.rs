//! Parsers for setting values; each returns the reason a value is refused.

use std::time::Duration;

use herald_core::retry::parse_duration;
use secrecy::SecretString;

use super::{MIN_ADMIN_TOKEN_LEN, RateLimit};

pub(super) fn parse_public_url(v: &str) -> Result<String, String> {
    let url = url::Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err("expected an http:// or https:// URL with a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub(super) fn parse_admin_token(v: &str) -> Result<SecretString, String> {
    if v.chars().count() < MIN_ADMIN_TOKEN_LEN {
        return Err(format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"));
    }
    if !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".to_owned());
    }
    Ok(SecretString::from(v))
}

/// Parses a whole number between `min` and `max`.
pub(super) fn parse_count(v: &str, min: u32, max: u32) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

/// Parses a number of milliseconds, at least `min` and at most a day.
pub(super) fn parse_millis(v: &str, min: u64) -> Result<Duration, String> {
    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    match v.parse::<u64>() {
        Ok(n) if (min..=DAY_MS).contains(&n) => Ok(Duration::from_millis(n)),
        _ => Err(format!("expected a number of milliseconds from {min} to {DAY_MS}")),
    }
}

/// Parses a number of milliseconds up to a year; `0` turns the feature off (`None`).
pub(super) fn parse_optional_millis(v: &str) -> Result<Option<Duration>, String> {
    const YEAR_MS: u64 = 365 * 24 * 60 * 60 * 1000;
    match v.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= YEAR_MS => Ok(Some(Duration::from_millis(n))),
        _ => Err(format!("expected a number of milliseconds up to {YEAR_MS}, or 0 for never")),
    }
}

/// Parses `1048576`, `64KiB` or `1MiB` (also `KB`/`MB` as powers of 1000).
pub(super) fn parse_byte_size(v: &str) -> Result<usize, String> {
    let bad = || "expected a number of bytes, such as 1048576, 512KiB or 1MiB".to_owned();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: usize = num.parse().map_err(|_| bad())?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "KB" => 1000,
        "MB" => 1_000_000,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(factor).ok_or_else(bad)?;
    if bytes == 0 || bytes > 1024 * 1024 * 1024 {
        return Err("must be between 1 byte and 1GiB".to_owned());
    }
    Ok(bytes)
}

/// A duration from 1 s to 90 days: long enough to outlast a provider's retries, and
/// no longer than a message's payload is kept.
pub(super) fn parse_dedup_window(v: &str) -> Result<Duration, String> {
    match parse_duration(v) {
        Ok(d) if (Duration::from_secs(1)..=Duration::from_secs(90 * 86_400)).contains(&d) => Ok(d),
        Ok(_) => Err("must be between 1s and 90d".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses `off`, `100/s`, `600/m` or `100/s,burst=200`.
pub(super) fn parse_rate_limit(v: &str) -> Result<Option<RateLimit>, String> {
    let bad = || "expected `off`, `RATE/s` or `RATE/m`, optionally `,burst=N` (e.g. `100/s,burst=200`)".to_owned();
    if v == "off" {
        return Ok(None);
    }
    let (rate, burst) = match v.split_once(',') {
        Some((rate, burst)) => (rate, Some(burst.trim().strip_prefix("burst=").ok_or_else(bad)?)),
        None => (v, None),
    };
    let (count, unit) = rate.trim().split_once('/').ok_or_else(bad)?;
    let count: f64 = count.parse().map_err(|_| bad())?;
    let per_second = match unit {
        "s" => count,
        "m" => count / 60.0,
        _ => return Err(bad()),
    };
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err("the rate must be above 0".to_owned());
    }
    let burst = match burst {
        Some(b) => b.parse::<u32>().map_err(|_| bad())?,
        None => per_second.ceil().min(f64::from(u32::MAX)) as u32,
    };
    if burst == 0 {
        return Err("the burst must be at least 1".to_owned());
    }
    Ok(Some(RateLimit { per_second, burst }))
}

/// [`parse_rate_limit`]'s forms, plus `0` for off and a bare number as a rate per
/// second. Without `,burst=N` the burst is two seconds' worth: providers send in
/// bursts when they catch up after an outage, and those should get through.
pub(super) fn parse_ingest_rate_limit(v: &str) -> Result<Option<RateLimit>, String> {
    let v = v.trim();
    if v == "0" {
        return Ok(None);
    }
    let spelled = if v.parse::<f64>().is_ok() { format!("{v}/s") } else { v.to_owned() };
    let limit = parse_rate_limit(&spelled)?;
    if spelled.contains(',') {
        return Ok(limit);
    }
    Ok(limit.map(|l| RateLimit { burst: (l.per_second * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32, ..l }))
}
