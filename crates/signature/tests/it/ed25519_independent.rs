//! `v1a` signatures produced by `ed25519-dalek` directly (not through Herald's signer)
//! and checked by Herald's verifier, from `whpk_` and `whsk_` keys in both encodings.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use herald_signature::header::from_pairs;
use herald_signature::{Verifier, VerifyError};
use proptest::prelude::*;

fn independent_entry(key: &SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    format!("v1a,{}", STANDARD.encode(key.sign(&content).to_bytes()))
}

fn verify(
    verifier: &Verifier,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let timestamp = timestamp.to_string();
    let pairs = [("svix-id", id), ("svix-timestamp", timestamp.as_str()), ("svix-signature", signature)];
    verifier.verify(body, &from_pairs(&pairs), now)
}

proptest! {
    #[test]
    fn independent_v1a_signatures_verify(
        seed in any::<[u8; 32]>(),
        id in "msg_[A-Za-z0-9]{1,27}",
        timestamp in 0i64..4_000_000_000,
        body in any::<Vec<u8>>(),
    ) {
        let key = SigningKey::from_bytes(&seed);
        let entry = independent_entry(&key, &id, timestamp, &body);
        let keys = [
            format!("whpk_{}", STANDARD.encode(key.verifying_key().as_bytes())),
            format!("whsk_{}", STANDARD.encode(seed)),
            format!("whsk_{}", STANDARD.encode(key.to_keypair_bytes())),
        ];
        for encoded in &keys {
            let verifier = Verifier::parse([encoded]).expect("key parses");
            prop_assert_eq!(verify(&verifier, &id, timestamp, &entry, &body, timestamp), Ok(()));
            prop_assert_eq!(
                verify(&verifier, &id, timestamp + 1, &entry, &body, timestamp),
                Err(VerifyError::NoMatchingSignature)
            );
        }
    }
}

#[test]
fn v1a_from_a_rotated_out_key_fails_and_the_new_one_passes() {
    let old = SigningKey::from_bytes(&[3u8; 32]);
    let new = SigningKey::from_bytes(&[4u8; 32]);
    let header = format!(
        "{} {}",
        independent_entry(&old, "msg_r", 1_700_000_000, b"{}"),
        independent_entry(&new, "msg_r", 1_700_000_000, b"{}")
    );
    let only_new = Verifier::parse([format!("whpk_{}", STANDARD.encode(new.verifying_key().as_bytes()))]).expect("key");
    assert_eq!(verify(&only_new, "msg_r", 1_700_000_000, &header, b"{}", 1_700_000_000), Ok(()));
    let unrelated = Verifier::parse([format!(
        "whpk_{}",
        STANDARD.encode(SigningKey::from_bytes(&[5u8; 32]).verifying_key().as_bytes())
    )])
    .expect("key");
    assert_eq!(
        verify(&unrelated, "msg_r", 1_700_000_000, &header, b"{}", 1_700_000_000),
        Err(VerifyError::NoMatchingSignature)
    );
}
