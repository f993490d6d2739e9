//! Herald's `v1` signatures checked by the `standardwebhooks` crate, and its signatures
//! checked by Herald's verifier, over random secrets, ids and bodies.

use herald_signature::header::from_pairs;
use herald_signature::{Secret, SigningSecret, SymmetricKey, Verifier, VerifyError, sign, sign_all};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use standardwebhooks::Webhook;

use crate::now_secs;

fn oracle_headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_str(id).expect("id header"));
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert("webhook-signature", HeaderValue::from_str(signature).expect("signature header"));
    headers
}

fn herald_verify(secret: &str, id: &str, timestamp: i64, signature: &str, body: &[u8]) -> Result<(), VerifyError> {
    let timestamp = timestamp.to_string();
    let pairs = [("webhook-id", id), ("webhook-timestamp", timestamp.as_str()), ("webhook-signature", signature)];
    Verifier::parse([secret]).expect("secret parses").verify(body, &from_pairs(&pairs), now_secs())
}

#[test]
fn design_vector_agrees_with_the_oracle() {
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let oracle = Webhook::new(secret).expect("oracle secret");
    let expected = oracle.sign(id, 1_649_367_553, body).expect("oracle signs");
    assert_eq!(expected, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    let herald = sign(&SigningSecret::parse(secret).expect("secret"), id, 1_649_367_553, body);
    assert_eq!(herald, expected);
}

#[test]
fn oracle_accepts_a_rotation_header_from_herald() {
    let current = SymmetricKey::generate();
    let old = SymmetricKey::generate();
    let now = now_secs();
    let body = br#"{"type":"invoice.paid"}"#;
    let header = sign_all(
        [&SigningSecret::Symmetric(current.clone()), &SigningSecret::Symmetric(old.clone())],
        "msg_rotation",
        now,
        body,
    );
    for key in [current, old] {
        let oracle = Webhook::new(&key.expose_encoded()).expect("oracle secret");
        oracle.verify(body, &oracle_headers("msg_rotation", now, &header)).expect("oracle verifies");
    }
}

#[test]
fn stale_oracle_signature_is_rejected_by_herald() {
    let key = SymmetricKey::generate();
    let oracle = Webhook::new(&key.expose_encoded()).expect("oracle secret");
    let stale = now_secs() - 301;
    let signature = oracle.sign("msg_stale", stale, b"{}").expect("oracle signs");
    assert_eq!(
        herald_verify(&key.expose_encoded(), "msg_stale", stale, &signature, b"{}"),
        Err(VerifyError::TimestampTooOld)
    );
}

fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 24..=64)
}

proptest! {
    // The oracle signs only UTF-8 bodies, so bodies here are strings.
    #[test]
    fn oracle_verifies_what_herald_signs(
        secret in secret_bytes(),
        id in "msg_[A-Za-z0-9]{1,27}",
        body in any::<String>(),
        skew in -250i64..=250,
    ) {
        let key = SymmetricKey::from_bytes(&secret).expect("valid length");
        let timestamp = now_secs() + skew;
        let signature = sign(&SigningSecret::Symmetric(key.clone()), &id, timestamp, body.as_bytes());
        let oracle = Webhook::new(&key.expose_encoded()).expect("oracle secret");
        prop_assert!(oracle.verify(body.as_bytes(), &oracle_headers(&id, timestamp, &signature)).is_ok());
    }

    #[test]
    fn herald_verifies_what_the_oracle_signs(
        secret in secret_bytes(),
        id in "msg_[A-Za-z0-9]{1,27}",
        body in any::<String>(),
        skew in -250i64..=250,
    ) {
        let encoded = SymmetricKey::from_bytes(&secret).expect("valid length").expose_encoded();
        let timestamp = now_secs() + skew;
        let signature = Webhook::new(&encoded).expect("oracle secret").sign(&id, timestamp, body.as_bytes()).expect("oracle signs");
        prop_assert_eq!(herald_verify(&encoded, &id, timestamp, &signature, body.as_bytes()), Ok(()));

        let mut tampered = body.into_bytes();
        tampered.push(b'!');
        prop_assert_eq!(
            herald_verify(&encoded, &id, timestamp, &signature, &tampered),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn both_reject_truncated_signatures(secret in secret_bytes(), cut in 1usize..44) {
        let key = SymmetricKey::from_bytes(&secret).expect("valid length");
        let now = now_secs();
        let body: &[u8] = b"{}";
        let full = sign(&SigningSecret::Symmetric(key.clone()), "msg_cut", now, body);
        let truncated = &full[..full.len() - cut];
        let oracle = Webhook::new(&key.expose_encoded()).expect("oracle secret");
        prop_assert!(oracle.verify(body, &oracle_headers("msg_cut", now, truncated)).is_err());
        prop_assert!(herald_verify(&key.expose_encoded(), "msg_cut", now, truncated, body).is_err());
    }
}

#[test]
fn bare_base64_secret_matches_the_oracle() {
    let key = SymmetricKey::generate();
    let bare = key.expose_encoded().trim_start_matches("whsec_").to_owned();
    assert_eq!(Secret::parse(&bare), Ok(Secret::Symmetric(key.clone())));
    let now = now_secs();
    let signature = Webhook::new(&bare).expect("oracle secret").sign("msg_bare", now, b"x").expect("signs");
    assert_eq!(herald_verify(&bare, "msg_bare", now, &signature, b"x"), Ok(()));
}
