//! Unit tests for [`super`]: the fixed vector of docs/GUARANTEES.md, rotation, tolerance, truncated and
//! malformed entries, `v1a` with an independently produced signature, and properties.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use proptest::prelude::*;

use super::*;
use crate::header::from_pairs;
use crate::secret::Ed25519SecretKey;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const TIMESTAMP: i64 = 1_649_367_553;
const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

fn signing_secret() -> SigningSecret {
    SigningSecret::parse(SECRET).unwrap()
}

fn verifier() -> Verifier {
    Verifier::parse([SECRET]).unwrap()
}

fn check(verifier: &Verifier, signature: &str, now: i64) -> Result<(), VerifyError> {
    let timestamp = TIMESTAMP.to_string();
    let pairs = [("webhook-id", MSG_ID), ("webhook-timestamp", timestamp.as_str()), ("webhook-signature", signature)];
    verifier.verify(BODY.as_bytes(), &from_pairs(&pairs), now)
}

#[test]
fn design_vector_signs_and_verifies() {
    assert_eq!(sign(&signing_secret(), MSG_ID, TIMESTAMP, BODY.as_bytes()), EXPECTED);
    assert_eq!(check(&verifier(), EXPECTED, TIMESTAMP), Ok(()));
}

#[test]
fn svix_header_names_are_accepted() {
    let pairs = [("Svix-Id", MSG_ID), ("Svix-Timestamp", "1649367553"), ("Svix-Signature", EXPECTED)];
    assert_eq!(verifier().verify(BODY.as_bytes(), &from_pairs(&pairs), TIMESTAMP), Ok(()));
}

#[test]
fn rotation_header_carries_every_secret_and_any_one_verifies() {
    let old = SigningSecret::Symmetric(SymmetricKey::generate());
    let ed = SigningSecret::Ed25519(Ed25519SecretKey::generate());
    let header = sign_all([&signing_secret(), &old, &ed], MSG_ID, TIMESTAMP, BODY.as_bytes());
    let entries: Vec<&str> = header.split(' ').collect();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0], EXPECTED);
    assert!(entries[2].starts_with("v1a,"));
    for secret in [signing_secret(), old, ed] {
        assert_eq!(check(&Verifier::new([Secret::from(secret)]), &header, TIMESTAMP), Ok(()));
    }
    assert_eq!(sign_all([], MSG_ID, TIMESTAMP, BODY.as_bytes()), "");
}

#[test]
fn timestamps_outside_the_tolerance_are_rejected_both_ways() {
    let table = [
        (TIMESTAMP + 300, Ok(())),
        (TIMESTAMP - 300, Ok(())),
        (TIMESTAMP + 301, Err(VerifyError::TimestampTooOld)),
        (TIMESTAMP - 301, Err(VerifyError::TimestampTooNew)),
        (TIMESTAMP + 86_400, Err(VerifyError::TimestampTooOld)),
    ];
    for (now, expected) in table {
        assert_eq!(check(&verifier(), EXPECTED, now), expected, "now {now}");
    }
    let strict = verifier().with_tolerance(10);
    assert_eq!(check(&strict, EXPECTED, TIMESTAMP + 11), Err(VerifyError::TimestampTooOld));
}

#[test]
fn truncated_and_altered_signatures_are_rejected() {
    let encoded = &EXPECTED[3..];
    let raw = STANDARD.decode(encoded).unwrap();
    let table = [
        // A prefix of the right tag, re-encoded as valid base64 (CVE-2024-21491).
        (format!("v1,{}", STANDARD.encode(&raw[..31])), Err(VerifyError::MalformedSignature)),
        (format!("v1,{}", STANDARD.encode(&raw[..16])), Err(VerifyError::MalformedSignature)),
        (format!("v1,{}", STANDARD.encode(&raw[..1])), Err(VerifyError::MalformedSignature)),
        (format!("v1,{}", &encoded[..20]), Err(VerifyError::MalformedSignature)),
        ("v1,".to_owned(), Err(VerifyError::MalformedSignature)),
        (format!("v1,{}", STANDARD.encode([&raw[..], &[0]].concat())), Err(VerifyError::MalformedSignature)),
        (format!("v1,{}", encoded.replace('t', "u")), Err(VerifyError::NoMatchingSignature)),
        (format!("v1,{}", encoded.trim_end_matches('=')), Err(VerifyError::MalformedSignature)),
        (format!("v2,{encoded}"), Err(VerifyError::NoMatchingSignature)),
        (format!("v1a,{encoded}"), Err(VerifyError::MalformedSignature)),
        (encoded.to_owned(), Err(VerifyError::MalformedSignature)),
        ("   ".to_owned(), Err(VerifyError::MissingHeader("webhook-signature"))),
    ];
    for (signature, expected) in table {
        assert_eq!(check(&verifier(), &signature, TIMESTAMP), expected, "{signature:?}");
    }
}

#[test]
fn one_matching_entry_among_others_passes() {
    let header = format!("v2,whatever garbage v1,{} {EXPECTED}", STANDARD.encode([0u8; 32]));
    assert_eq!(check(&verifier(), &header, TIMESTAMP), Ok(()));
    let header = format!("  {EXPECTED}  ");
    assert_eq!(check(&verifier(), &header, TIMESTAMP), Ok(()));
}

#[test]
fn too_many_entries_are_refused() {
    let header = vec![EXPECTED; MAX_SIGNATURE_ENTRIES + 1].join(" ");
    assert_eq!(check(&verifier(), &header, TIMESTAMP), Err(VerifyError::TooManySignatures));
}

#[test]
fn missing_headers_and_missing_secrets_are_rejections() {
    let timestamp = TIMESTAMP.to_string();
    let full = [("webhook-id", MSG_ID), ("webhook-timestamp", timestamp.as_str()), ("webhook-signature", EXPECTED)];
    for skip in 0..full.len() {
        let pairs: Vec<_> = full.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, p)| *p).collect();
        let result = verifier().verify(BODY.as_bytes(), &from_pairs(&pairs), TIMESTAMP);
        assert_eq!(result, Err(VerifyError::MissingHeader(full[skip].0)));
    }
    assert_eq!(check(&Verifier::new([]), EXPECTED, TIMESTAMP), Err(VerifyError::NoSecrets));
}

#[test]
fn timestamp_must_be_plain_digits_and_is_signed_as_a_number() {
    let bad = ["", "abc", "-1649367553", "1649367553.0", " 1649367553x"];
    for timestamp in bad {
        let result = verifier().verify_parts(MSG_ID, timestamp, EXPECTED, BODY.as_bytes(), TIMESTAMP);
        assert_eq!(result, Err(VerifyError::InvalidTimestamp), "{timestamp:?}");
    }
    let padded = verifier().verify_parts(MSG_ID, "0001649367553", EXPECTED, BODY.as_bytes(), TIMESTAMP);
    assert_eq!(padded, Ok(()));
}

#[test]
fn v1a_signed_independently_verifies_with_public_and_secret_keys() {
    // Signed with ed25519-dalek directly, not through this crate's signer.
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let content = format!("{MSG_ID}.{TIMESTAMP}.{BODY}");
    let entry = format!("v1a,{}", STANDARD.encode(dalek.sign(content.as_bytes()).to_bytes()));
    let public = format!("whpk_{}", STANDARD.encode(dalek.verifying_key().as_bytes()));
    let secret = format!("whsk_{}", STANDARD.encode(dalek.to_bytes()));
    for key in [&public, &secret] {
        assert_eq!(check(&Verifier::parse([key]).unwrap(), &entry, TIMESTAMP), Ok(()), "{key}");
    }
    // Herald's signer agrees byte for byte (ed25519 signatures are deterministic).
    let herald = SigningSecret::parse(&secret).unwrap();
    assert_eq!(sign(&herald, MSG_ID, TIMESTAMP, BODY.as_bytes()), entry);

    let other = Ed25519SecretKey::generate().public_key().to_encoded();
    let wrong_key = Verifier::parse([other.as_str()]).unwrap();
    assert_eq!(check(&wrong_key, &entry, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
    // A symmetric secret never verifies a v1a entry, nor an ed25519 key a v1 entry.
    assert_eq!(check(&verifier(), &entry, TIMESTAMP), Err(VerifyError::NoMatchingSignature));
    assert_eq!(check(&Verifier::parse([&public]).unwrap(), EXPECTED, TIMESTAMP), Err(VerifyError::NoMatchingSignature));

    let raw = STANDARD.decode(&entry[4..]).unwrap();
    let truncated = format!("v1a,{}", STANDARD.encode(&raw[..63]));
    assert_eq!(
        check(&Verifier::parse([&public]).unwrap(), &truncated, TIMESTAMP),
        Err(VerifyError::MalformedSignature)
    );
}

fn any_signing_secret() -> impl Strategy<Value = SigningSecret> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 24..=64)
            .prop_map(|bytes| SigningSecret::Symmetric(SymmetricKey::from_bytes(&bytes).unwrap())),
        any::<[u8; 32]>().prop_map(|seed| SigningSecret::Ed25519(Ed25519SecretKey::from_seed(&seed))),
    ]
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        secret in any_signing_secret(),
        id in "msg_[A-Za-z0-9]{1,27}",
        timestamp in 0i64..4_000_000_000,
        skew in -300i64..=300,
        body in any::<Vec<u8>>(),
    ) {
        let signature = sign(&secret, &id, timestamp, &body);
        let verifier = Verifier::new([Secret::from(secret)]);
        prop_assert_eq!(
            verifier.verify_parts(&id, &timestamp.to_string(), &signature, &body, timestamp + skew),
            Ok(())
        );
        let mut tampered = body.clone();
        tampered.push(b'x');
        prop_assert_eq!(
            verifier.verify_parts(&id, &timestamp.to_string(), &signature, &tampered, timestamp),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn verify_never_panics_on_any_headers(
        id in any::<String>(),
        timestamp in any::<String>(),
        signature in any::<String>(),
        now in any::<i64>(),
    ) {
        let pairs = [("webhook-id", id.as_str()), ("webhook-timestamp", timestamp.as_str()), ("webhook-signature", signature.as_str())];
        let public = Ed25519SecretKey::from_seed(&[1u8; 32]).public_key().to_encoded();
        let verifier = Verifier::parse([SECRET, public.as_str()]).unwrap();
        let _ = verifier.verify(BODY.as_bytes(), &from_pairs(&pairs), now);
    }

    #[test]
    fn verify_never_panics_on_entry_shaped_signatures(
        entries in prop::collection::vec(("v1a?|v2|", "[A-Za-z0-9+/=,]{0,90}"), 0..40),
    ) {
        let header = entries.iter().map(|(v, s)| format!("{v},{s}")).collect::<Vec<_>>().join(" ");
        let _ = verifier().verify_parts(MSG_ID, "1649367553", &header, BODY.as_bytes(), TIMESTAMP);
    }
}
