//! Field rules shared by the API and the store: the character sets and lengths of
//! `uid`s, event type names, channels and tags, and endpoint URL syntax.
//!
//! A failed rule becomes a [`Violation`] that names the field's location, so the API can
//! answer with the contract's 422 body (`{"detail":[{"loc","msg","type"}]}`).

/// One failed rule, located like the contract's `ValidationError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path to the field, e.g. `["body", "uid"]`.
    pub loc: Vec<String>,
    /// Human-readable reason.
    pub msg: String,
    /// Machine-readable kind, e.g. `value_error`.
    pub kind: String,
}

impl Violation {
    /// A `value_error` at `loc`.
    pub fn new(loc: &[&str], msg: impl Into<String>) -> Self {
        Self { loc: loc.iter().map(|s| (*s).to_owned()).collect(), msg: msg.into(), kind: "value_error".to_owned() }
    }
}

/// Every rule an input broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validation failed: {}", .0.iter().map(|v| format!("{}: {}", v.loc.join("."), v.msg)).collect::<Vec<_>>().join("; "))]
pub struct ValidationError(pub Vec<Violation>);

impl ValidationError {
    /// A single violation.
    pub fn one(loc: &[&str], msg: impl Into<String>) -> Self {
        Self(vec![Violation::new(loc, msg)])
    }
}

/// Collects violations while checking the fields of one input.
#[derive(Debug, Default)]
pub struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    /// Records a violation at `loc` unless `ok`.
    pub fn check(&mut self, ok: bool, loc: &[&str], msg: impl Into<String>) {
        if !ok {
            self.violations.push(Violation::new(loc, msg));
        }
    }

    /// Records the violation of a rule function, if any.
    pub fn rule(&mut self, loc: &[&str], result: Result<(), String>) {
        if let Err(msg) = result {
            self.violations.push(Violation::new(loc, msg));
        }
    }

    /// `Ok` when nothing was recorded.
    ///
    /// # Errors
    /// The collected [`ValidationError`].
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.violations.is_empty() { Ok(()) } else { Err(ValidationError(self.violations)) }
    }
}

fn charset(value: &str, max: usize, extra: &[u8], what: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > max {
        return Err(format!("{what} must be at most {max} characters"));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b)) {
        let allowed: String = extra.iter().map(|b| *b as char).collect();
        return Err(format!("{what} may contain only letters, digits and `{allowed}`"));
    }
    Ok(())
}

/// A `uid`: 1–256 of `[a-zA-Z0-9-_.]`.
///
/// # Errors
/// The reason, for a [`Violation`].
pub fn uid(value: &str) -> Result<(), String> {
    charset(value, 256, b"-_.", "uid")
}

/// An event type name (also an `eventId` and a feature flag): 1–256 of `[a-zA-Z0-9-_.]`.
///
/// # Errors
/// The reason, for a [`Violation`].
pub fn name(value: &str) -> Result<(), String> {
    charset(value, 256, b"-_.", "name")
}

/// A channel: 1–128 of `[a-zA-Z0-9-_.:+]`.
///
/// # Errors
/// The reason, for a [`Violation`].
pub fn channel(value: &str) -> Result<(), String> {
    charset(value, 128, b"-_.:+", "channel")
}

/// A message tag: 1–128 of `[a-zA-Z0-9-_./\#]`.
///
/// # Errors
/// The reason, for a [`Violation`].
pub fn tag(value: &str) -> Result<(), String> {
    charset(value, 128, b"-_./\\#", "tag")
}

/// A list with at most `max` unique entries, each passing `rule`.
///
/// # Errors
/// The first reason found.
pub fn unique_list(values: &[String], max: usize, rule: fn(&str) -> Result<(), String>) -> Result<(), String> {
    if values.len() > max {
        return Err(format!("at most {max} entries are allowed"));
    }
    let mut seen = std::collections::HashSet::new();
    for v in values {
        rule(v)?;
        if !seen.insert(v.as_str()) {
            return Err(format!("duplicate entry `{v}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract_patterns() {
        for (value, ok) in [
            ("user.signup", true),
            ("a-b_c.D9", true),
            ("", false),
            ("has space", false),
            ("semi;colon", false),
            ("é", false),
        ] {
            assert_eq!(name(value).is_ok(), ok, "{value:?}");
            assert_eq!(uid(value).is_ok(), ok, "{value:?}");
        }
        assert!(name(&"a".repeat(256)).is_ok());
        assert!(name(&"a".repeat(257)).is_err());
        assert!(channel("project:1+2").is_ok());
        assert!(channel(&"c".repeat(129)).is_err());
        assert!(tag("a/b#c\\d").is_ok());
        assert!(tag("a:b").is_err());
    }

    #[test]
    fn lists_are_bounded_and_unique() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(unique_list(&list(&["a", "b"]), 10, channel).is_ok());
        assert!(unique_list(&list(&["a", "a"]), 10, channel).is_err());
        assert!(unique_list(&list(&["a", "b", "c"]), 2, channel).is_err());
        assert!(unique_list(&list(&["a b"]), 2, channel).is_err());
    }
}
