//! Sealed cursors. A cursor carries its row's sort-key values (an importer's name, a declared
//! value), which are record data no quota counted: a client that selected only `edges { cursor
//! }` read a thousand rows' values a request for free. So a cursor leaves the server encrypted
//! and authenticated (XChaCha20-Poly1305): a client can neither read a position nor make one up,
//! and a cursor that does not open under this deployment's key — altered, cut short, made by
//! another deployment, or the plain JSON of earlier releases — is refused as malformed.

use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::audit::{AuditKey, key};

const NONCE_LEN: usize = 24;

/// The key cursors are sealed with. Derived from the audit key, which every replica of a
/// deployment already shares (the one chain they append to must verify under it): a cursor
/// made by one replica pages on another and after a restart, and there is no new secret to set.
pub struct CursorKey {
    cipher: XChaCha20Poly1305,
    /// A random nonce per cursor: two cursors of one row differ, and no counter tells a client
    /// how many cursors the server made. At 192 bits a repeat is negligible however many are
    /// drawn. A generator seeded once from the OS, so that drawing one cannot fail mid-response.
    nonces: Mutex<ChaCha20Rng>,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(***)")
    }
}

impl CursorKey {
    /// Fails only when the OS has no randomness to seed the nonces with: start-up stops.
    pub fn derive(audit: &AuditKey) -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(CursorKey {
            cipher: XChaCha20Poly1305::new(&Key::from(audit.derive(key::CURSOR))),
            nonces: Mutex::new(ChaCha20Rng::from_seed(seed)),
        })
    }

    /// `base64url(nonce ‖ ciphertext ‖ tag)`.
    pub(super) fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // Filling bytes cannot panic, so a poisoned lock still holds a sound generator.
        self.nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), plaintext)
            .unwrap_or_else(|_| unreachable!("a cursor is far below the cipher's 256 GiB limit"));
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The plaintext of a cursor this key sealed; `None` for anything else.
    pub(super) fn open(&self, cursor: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let (nonce, sealed) = bytes.split_first_chunk::<NONCE_LEN>()?;
        self.cipher.decrypt(&XNonce::from(*nonce), sealed).ok()
    }
}
