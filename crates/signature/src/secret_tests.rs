//! Unit tests for [`super`]: length bounds, prefixes, keypair checks, weak keys,
//! redaction, generation, and properties that parsing never panics.

use proptest::prelude::*;

use super::*;

const DESIGN_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[test]
fn whsec_and_bare_base64_parse_to_the_same_key() {
    let prefixed = Secret::parse(DESIGN_SECRET).unwrap();
    let bare = Secret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert_eq!(prefixed, bare);
    let Secret::Symmetric(key) = prefixed else {
        panic!("expected a symmetric key");
    };
    assert_eq!(key.expose_bytes().len(), 24);
    assert_eq!(key.expose_encoded(), DESIGN_SECRET);
}

#[test]
fn symmetric_length_bounds_are_enforced() {
    let table = [(23, false), (24, true), (32, true), (64, true), (65, false)];
    for (len, ok) in table {
        let encoded = format!("whsec_{}", STANDARD.encode(vec![7u8; len]));
        let parsed = Secret::parse(&encoded);
        assert_eq!(parsed.is_ok(), ok, "length {len}");
        if !ok {
            assert_eq!(parsed, Err(SecretError::SymmetricLength(len)));
        }
    }
}

#[test]
fn malformed_strings_are_refused() {
    let table = [
        ("", SecretError::Empty),
        ("whsec_", SecretError::Empty),
        ("whsk_", SecretError::Empty),
        ("whsec_not base64!", SecretError::InvalidBase64),
        ("whpk_AAAA", SecretError::PublicKeyLength(3)),
        ("whsk_AAAA", SecretError::SigningKeyLength(3)),
    ];
    for (input, expected) in table {
        assert_eq!(Secret::parse(input), Err(expected), "{input:?}");
    }
}

#[test]
fn signing_key_accepts_seed_and_keypair_and_round_trips() {
    let key = Ed25519SecretKey::from_seed(&[9u8; 32]);
    let seed_form = format!("whsk_{}", STANDARD.encode([9u8; 32]));
    assert_eq!(Secret::parse(&seed_form), Ok(Secret::Ed25519(key.clone())));
    let keypair_form = key.expose_encoded();
    assert_eq!(Secret::parse(&keypair_form), Ok(Secret::Ed25519(key.clone())));
    let public = key.public_key().to_encoded();
    assert_eq!(Secret::parse(&public), Ok(Secret::Ed25519Public(key.public_key())));
}

#[test]
fn keypair_with_a_foreign_public_half_is_refused() {
    let mut bytes = Ed25519SecretKey::from_seed(&[1u8; 32]).0.to_keypair_bytes();
    bytes[32..].copy_from_slice(Ed25519SecretKey::from_seed(&[2u8; 32]).public_key().0.as_bytes());
    let encoded = format!("whsk_{}", STANDARD.encode(bytes));
    assert_eq!(Secret::parse(&encoded), Err(SecretError::KeypairMismatch));
}

#[test]
fn small_order_public_key_is_refused() {
    // The identity point encodes as 1 followed by zeros: decodable, but weak.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let encoded = format!("whpk_{}", STANDARD.encode(identity));
    assert_eq!(Secret::parse(&encoded), Err(SecretError::InvalidPublicKey));
}

#[test]
fn public_key_cannot_become_a_signing_secret() {
    let public = Ed25519SecretKey::generate().public_key().to_encoded();
    assert_eq!(SigningSecret::parse(&public), Err(SecretError::PublicKeyCannotSign));
}

#[test]
fn debug_output_redacts_key_material() {
    let symmetric = Secret::parse(DESIGN_SECRET).unwrap();
    let debug = format!("{symmetric:?}");
    assert!(!debug.contains("C2FVsBQIhrscChlQIMV"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");

    let key = Ed25519SecretKey::generate();
    let encoded = key.expose_encoded();
    let seed_part = &encoded["whsk_".len()..("whsk_".len() + 20)];
    let debug = format!("{:?}", Secret::Ed25519(key));
    assert!(!debug.contains(seed_part), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn generated_keys_parse_back() {
    let symmetric = SymmetricKey::generate();
    assert_eq!(Secret::parse(&symmetric.expose_encoded()), Ok(Secret::Symmetric(symmetric.clone())));
    assert_ne!(symmetric, SymmetricKey::generate());
    let signing = Ed25519SecretKey::generate();
    assert_eq!(SigningSecret::parse(&signing.expose_encoded()), Ok(SigningSecret::Ed25519(signing)));
}

proptest! {
    #[test]
    fn parse_never_panics(input in any::<String>()) {
        let _ = Secret::parse(&input);
        let _ = SigningSecret::parse(&input);
    }

    #[test]
    fn parse_never_panics_on_prefixed_base64(
        prefix in prop::sample::select(vec!["whsec_", "whsk_", "whpk_", ""]),
        bytes in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let _ = Secret::parse(&format!("{prefix}{}", STANDARD.encode(bytes)));
    }
}
