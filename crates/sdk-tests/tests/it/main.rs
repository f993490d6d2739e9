//! The official `svix` crate against a real Herald server (`herald_testkit::spawn_app`):
//! every resource of the management API, its errors, pagination and idempotency, with
//! the SDK as the only client. A raw HTTP request appears only where the SDK cannot say
//! what is being checked.
//!
//! The SDK turns a non-2xx answer into `svix::error::Error::Http` (the status and the
//! `{"code","detail"}` body) or, for 422, `Error::Validation` (the `detail` list); the
//! helpers below unwrap those, so a test fails loudly when the SDK could not parse
//! Herald's answer (`Error::Generic`).

mod applications;
mod attempts;
mod deliveries;
mod endpoints;
mod errors;
mod event_types;
mod events;
mod health;
mod idempotency;
mod ingest;
mod messages;
mod pagination;

use std::fmt::Debug;

use svix::{
    error::Error,
    models::{HttpErrorOut, ValidationError},
};

/// The status and parsed `{"code","detail"}` body of a call that must fail with an
/// HTTP error other than 422.
#[track_caller]
fn http_error<T: Debug>(result: Result<T, Error>) -> (u16, HttpErrorOut) {
    match result {
        Err(Error::Http(content)) => {
            let status = content.status.as_u16();
            let body = content.payload.unwrap_or_else(|| panic!("the {status} body is not {{\"code\",\"detail\"}}"));
            (status, body)
        }
        other => panic!("expected an HTTP error from the SDK, got {other:?}"),
    }
}

/// The parsed `detail` list of a call that must fail with 422.
#[track_caller]
fn validation_error<T: Debug>(result: Result<T, Error>) -> Vec<ValidationError> {
    match result {
        Err(Error::Validation(content)) => {
            content.payload.expect("the 422 body is {\"detail\":[{\"loc\",\"msg\",\"type\"}]}").detail
        }
        other => panic!("expected a 422 from the SDK, got {other:?}"),
    }
}

/// Owned strings from literals, for the SDK's `BTreeSet`/`Vec` fields.
fn strings<C: FromIterator<String>>(items: &[&str]) -> C {
    items.iter().map(|s| (*s).to_owned()).collect()
}
