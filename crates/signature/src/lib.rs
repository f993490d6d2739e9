//! Herald's webhook signatures: the Standard Webhooks contract and the inbound
//! provider verifiers.
//!
//! - [`secret`]: `whsec_` / `whsk_` / `whpk_` key formats, with redacted `Debug`.
//! - [`standard`]: [`sign`], [`sign_all`] for rotation, and the receiver-side
//!   [`Verifier`] (`webhook-*` or `svix-*` headers, 300 s tolerance both ways,
//!   constant-time comparison of decoded bytes).
//! - [`providers`]: Stripe, GitHub, Shopify and Slack, all behind [`InboundVerifier`].
//! - [`header`]: header names and the lookup callers pass in.
//!
//! The crate performs no I/O and never reads the clock: callers pass `now` in. It
//! depends on no other Herald crate, no async runtime and no HTTP library, so
//! receivers can use it on its own.

mod digest;
mod error;
pub mod header;
pub mod providers;
pub mod secret;
pub mod standard;

pub use error::VerifyError;
pub use providers::InboundVerifier;
pub use secret::{Ed25519PublicKey, Ed25519SecretKey, Secret, SecretError, SigningSecret, SymmetricKey};
pub use standard::{Verifier, sign, sign_all};
