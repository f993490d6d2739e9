//! `herald verify`: Herald's own verifier on the command line, checked against
//! signatures made by independent implementations (`standardwebhooks` for `v1`,
//! `ed25519-dalek` for `v1a`) and the fixed vector in docs/GUARANTEES.md.

use std::{
    io::Write,
    process::{Output, Stdio},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signer, SigningKey};

use crate::support::herald;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;

/// Runs `herald verify` with `args`, feeding `body` on standard input.
fn verify(args: &[&str], env: &[(&str, &str)], body: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = herald(dir.path());
    cmd.arg("verify").args(args).envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("run herald verify");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_v1_signature_made_by_standardwebhooks_verifies_and_a_changed_body_does_not() {
    let now = chrono::Utc::now().timestamp();
    let signature = standardwebhooks::Webhook::new(SECRET).unwrap().sign(ID, now, BODY.as_bytes()).unwrap();
    let ts = now.to_string();
    let args = ["--secret", SECRET, "--id", ID, "--timestamp", &ts, "--signature", &signature];

    let ok = verify(&args, &[], BODY);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("verified"), "{}", text(&ok.stdout));

    let tampered = verify(&args, &[], &BODY.replace("test_user", "admin"));
    assert_eq!(tampered.status.code(), Some(1));
    assert!(text(&tampered.stderr).contains("does not verify"), "{}", text(&tampered.stderr));

    // The key can come from the environment instead of the process list, and a
    // rotated-out key next to the right one still verifies.
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let env_args = ["--id", ID, "--timestamp", &ts, "--signature", &signature];
    assert_eq!(verify(&env_args, &[("WEBHOOK_SECRET", SECRET)], BODY).status.code(), Some(0));
    let both = ["--secret", other, "--secret", SECRET, "--id", ID, "--timestamp", &ts, "--signature", &signature];
    assert_eq!(verify(&both, &[], BODY).status.code(), Some(0));
    let wrong = ["--secret", other, "--id", ID, "--timestamp", &ts, "--signature", &signature];
    assert_eq!(verify(&wrong, &[], BODY).status.code(), Some(1));
}

#[test]
fn the_design_vector_verifies_once_the_tolerance_allows_its_age() {
    let signature = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    let args = ["--secret", SECRET, "--id", ID, "--timestamp", "1649367553", "--signature", signature];
    let stale = verify(&args, &[], BODY);
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale.stderr).contains("too old"), "{}", text(&stale.stderr));

    let with_tolerance = [&args[..], &["--tolerance", "4000000000"]].concat();
    let ok = verify(&with_tolerance, &[], BODY);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
}

#[test]
fn a_v1a_signature_made_by_ed25519_dalek_verifies_with_the_public_key() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = format!("whpk_{}", STANDARD.encode(key.verifying_key().as_bytes()));
    let now = chrono::Utc::now().timestamp().to_string();
    let signed = key.sign(format!("{ID}.{now}.{BODY}").as_bytes());
    let signature = format!("v1a,{}", STANDARD.encode(signed.to_bytes()));
    let args = ["--secret", &public, "--id", ID, "--timestamp", &now, "--signature", &signature];

    let ok = verify(&args, &[], BODY);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));

    let other = format!("whpk_{}", STANDARD.encode(SigningKey::from_bytes(&[8; 32]).verifying_key().as_bytes()));
    let wrong = ["--secret", &other, "--id", ID, "--timestamp", &now, "--signature", &signature];
    assert_eq!(verify(&wrong, &[], BODY).status.code(), Some(1));
}

#[test]
fn a_malformed_key_exits_2_without_echoing_it() {
    let bad = "whsec_not*base64*at*all";
    let args = ["--secret", bad, "--id", ID, "--timestamp", "1", "--signature", "v1,AAAA"];
    let out = verify(&args, &[], BODY);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--secret") && !stderr.contains("not*base64"), "{stderr}");
}
