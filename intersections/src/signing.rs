//! Signatures on plans and commands (Ed25519). The centre signs; the controller verifies.
//!
//! The signed bytes are the message's JSON with its `signature` field empty, exactly as this
//! crate serializes it (field order is fixed by the types, maps are ordered), so the verifier
//! recomputes them from the message it parsed. A message with any field changed, added or
//! removed fails verification.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::messages::{Command, PlanDeployment};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature is not valid base64 of 64 bytes")]
    Malformed,
    #[error("signed by key {found:?}, expected {expected:?}")]
    UnknownKey { found: String, expected: String },
    #[error("signature does not match the message (forged or altered)")]
    Mismatch,
    #[error("key is not valid: {0}")]
    BadKey(String),
}

/// A message that carries its own signature.
pub trait Signed: serde::Serialize + Clone {
    fn signature(&self) -> &str;
    fn set_signature(&mut self, sig: String);
    fn key_id(&self) -> &str;

    /// The bytes that are signed: the JSON with an empty signature.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut m = self.clone();
        m.set_signature(String::new());
        serde_json::to_vec(&m).unwrap_or_default()
    }
}

impl Signed for PlanDeployment {
    fn signature(&self) -> &str {
        &self.signature
    }
    fn set_signature(&mut self, sig: String) {
        self.signature = sig;
    }
    fn key_id(&self) -> &str {
        &self.key_id
    }
}

impl Signed for Command {
    fn signature(&self) -> &str {
        &self.signature
    }
    fn set_signature(&mut self, sig: String) {
        self.signature = sig;
    }
    fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// A signing key with the id that names it in messages.
pub struct Signer25519 {
    pub key_id: String,
    key: SigningKey,
}

impl Signer25519 {
    /// From the 32-byte secret seed.
    pub fn from_seed(key_id: impl Into<String>, seed: [u8; 32]) -> Self {
        Signer25519 {
            key_id: key_id.into(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// From the base64 of the 32-byte seed (the format of key files).
    pub fn from_base64(key_id: impl Into<String>, b64: &str) -> Result<Self, SignatureError> {
        let bytes = B64
            .decode(b64.trim())
            .map_err(|e| SignatureError::BadKey(e.to_string()))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SignatureError::BadKey("a secret key is 32 bytes".into()))?;
        Ok(Self::from_seed(key_id, seed))
    }

    /// The public key, base64, for the controllers' configuration.
    pub fn public_base64(&self) -> String {
        B64.encode(self.key.verifying_key().to_bytes())
    }

    /// Set `key_id` and `signature` on a message.
    pub fn sign<M: Signed + KeyIdMut>(&self, msg: &mut M) {
        msg.set_key_id(self.key_id.clone());
        let sig = self.key.sign(&msg.signed_bytes());
        msg.set_signature(B64.encode(sig.to_bytes()));
    }
}

/// Messages whose key id can be set before signing.
pub trait KeyIdMut {
    fn set_key_id(&mut self, id: String);
}
impl KeyIdMut for PlanDeployment {
    fn set_key_id(&mut self, id: String) {
        self.key_id = id;
    }
}
impl KeyIdMut for Command {
    fn set_key_id(&mut self, id: String) {
        self.key_id = id;
    }
}

/// The centre's public key as a controller holds it.
#[derive(Clone, Debug)]
pub struct Verifier25519 {
    pub key_id: String,
    key: VerifyingKey,
}

impl Verifier25519 {
    pub fn from_base64(key_id: impl Into<String>, b64: &str) -> Result<Self, SignatureError> {
        let bytes = B64
            .decode(b64.trim())
            .map_err(|e| SignatureError::BadKey(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SignatureError::BadKey("a public key is 32 bytes".into()))?;
        let key =
            VerifyingKey::from_bytes(&arr).map_err(|e| SignatureError::BadKey(e.to_string()))?;
        Ok(Verifier25519 {
            key_id: key_id.into(),
            key,
        })
    }

    /// Check a message's signature (not its freshness or content).
    pub fn verify<M: Signed>(&self, msg: &M) -> Result<(), SignatureError> {
        if msg.key_id() != self.key_id {
            return Err(SignatureError::UnknownKey {
                found: msg.key_id().to_string(),
                expected: self.key_id.clone(),
            });
        }
        let raw = B64
            .decode(msg.signature())
            .map_err(|_| SignatureError::Malformed)?;
        let arr: [u8; 64] = raw.try_into().map_err(|_| SignatureError::Malformed)?;
        let sig = Signature::from_bytes(&arr);
        self.key
            .verify(&msg.signed_bytes(), &sig)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{CommandAction, WIRE_VERSION};

    fn cmd() -> Command {
        Command {
            version: WIRE_VERSION,
            region: "r".into(),
            intersection: "C".into(),
            seq: 7,
            issued_at_ms: 1000,
            expires_at_ms: 61_000,
            operator: "engineer".into(),
            action: CommandAction::HoldStage {
                stage: "arterial".into(),
            },
            key_id: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn sign_verify_and_reject_tampering() {
        let s = Signer25519::from_seed("centre-1", [7; 32]);
        let v = Verifier25519::from_base64("centre-1", &s.public_base64()).unwrap();
        let mut c = cmd();
        s.sign(&mut c);
        assert_eq!(v.verify(&c), Ok(()));
        let mut altered = c.clone();
        altered.seq = 8;
        assert_eq!(v.verify(&altered), Err(SignatureError::Mismatch));
        let forger = Signer25519::from_seed("centre-1", [9; 32]);
        let mut forged = cmd();
        forger.sign(&mut forged);
        assert_eq!(v.verify(&forged), Err(SignatureError::Mismatch));
        let mut garbage = c.clone();
        garbage.signature = "!!".into();
        assert_eq!(v.verify(&garbage), Err(SignatureError::Malformed));
        let other = Signer25519::from_seed("someone", [7; 32]);
        let mut wrong_id = cmd();
        other.sign(&mut wrong_id);
        assert!(matches!(
            v.verify(&wrong_id),
            Err(SignatureError::UnknownKey { .. })
        ));
    }
}
