//! Keys: a master secret, keys derived from it per campaign or cohort (HKDF-SHA256), key ids
//! that may travel in headers, and keyrings that map ids to keys.

use std::fmt;

use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

/// HKDF salt of scheme version 1 (SCHEME.md, "Keys").
const DERIVE_SALT: &[u8] = b"moat-mark/v1";
/// Prefix hashed before a key to form its id.
const KEY_ID_PREFIX: &[u8] = b"moat-mark/key-id/v1";
/// Prefix hashed before a key to form the PRF words.
const PRF_PREFIX: &[u8] = b"moat-mark/prf/v1";

/// A 32-byte secret: the master secret or a key derived from it. `Debug` and `Display` show
/// only the key id, so a key cannot leak through a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    /// Wraps raw bytes (from the operating system's random source, or a test).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Key, Error> {
        let text = text.trim();
        match decode_hex::<32>(text) {
            Ok(bytes) => Ok(Key(bytes)),
            Err(HexError::Length) => Err(Error::InvalidKey(format!(
                "expected 64 hex characters, found {}",
                text.chars().count()
            ))),
            Err(HexError::Digit(at)) => Err(Error::InvalidKey(format!(
                "non-hex character at position {at}"
            ))),
        }
    }

    /// The key as 64 lowercase hex characters: for key files only.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derives the key of a scope (`campaign:c-42`, `cohort:eu-free`, …) from this master
    /// secret with HKDF-SHA256 (RFC 5869).
    pub fn derive(&self, scope: &str) -> Key {
        let hk = Hkdf::<Sha256>::new(Some(DERIVE_SALT), &self.0);
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
        if hk.expand(scope.as_bytes(), &mut out).is_err() {
            unreachable_expand();
        }
        Key(out)
    }

    /// The public name of this key: safe in headers, logs and reports.
    pub fn id(&self) -> KeyId {
        let digest = Sha256::new()
            .chain_update(KEY_ID_PREFIX)
            .chain_update(self.0)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// The two PRF words `(k0, k1)` (SCHEME.md, "Keys").
    pub fn prf_words(&self) -> (u64, u64) {
        let digest = Sha256::new()
            .chain_update(PRF_PREFIX)
            .chain_update(self.0)
            .finalize();
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&digest[..8]);
        k1.copy_from_slice(&digest[8..16]);
        (u64::from_le_bytes(k0), u64::from_le_bytes(k1))
    }
}

/// HKDF's expand only fails for outputs longer than 255 hash lengths; ours is one.
#[cold]
fn unreachable_expand() {
    debug_assert!(false, "hkdf expand of 32 bytes failed");
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id())
    }
}

/// The 8-byte public identifier of a key, shown as 16 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// Parses 16 hex characters.
    pub fn from_hex(text: &str) -> Result<KeyId, Error> {
        let text = text.trim();
        match decode_hex::<8>(text) {
            Ok(id) => Ok(KeyId(id)),
            Err(HexError::Length) => Err(Error::InvalidKey(format!(
                "a key id has 16 hex characters, found {}",
                text.chars().count()
            ))),
            Err(HexError::Digit(_)) => {
                Err(Error::InvalidKey(format!("key id {text:?} is not hex")))
            }
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why hex text did not decode.
enum HexError {
    /// Not exactly two characters a byte.
    Length,
    /// A character that is not a hex digit, at this byte offset.
    Digit(usize),
}

/// Decodes exactly `2 * N` hex characters (either case).
fn decode_hex<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return Err(HexError::Length);
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
            (hi, _) => return Err(HexError::Digit(2 * i + usize::from(hi.is_some()))),
        }
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Keys an inference engine may be asked to use, by id. Written by `moat mark keygen` and
/// `moat mark derive`, read by the detector and by the Python integration.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<KeyringEntry>,
}

/// One keyring entry.
#[derive(Debug, Clone)]
pub struct KeyringEntry {
    /// The key's id.
    pub id: KeyId,
    /// The key.
    pub key: Key,
    /// What the key was derived for (`campaign:…`, `cohort:…`), empty for a master secret.
    pub scope: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    keys: Vec<KeyringFileEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFileEntry {
    id: String,
    key: String,
    #[serde(default)]
    scope: String,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds a key; a key already present (same id) is replaced.
    pub fn insert(&mut self, key: Key, scope: &str) {
        let id = key.id();
        self.entries.retain(|e| e.id != id);
        self.entries.push(KeyringEntry {
            id,
            key,
            scope: scope.to_owned(),
        });
    }

    /// The key with this id.
    pub fn get(&self, id: KeyId) -> Option<&KeyringEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The key derived for this scope.
    pub fn by_scope(&self, scope: &str) -> Option<&KeyringEntry> {
        self.entries.iter().find(|e| e.scope == scope)
    }

    /// Every entry, in insertion order.
    pub fn entries(&self) -> &[KeyringEntry] {
        &self.entries
    }

    /// Parses the keyring JSON format (`{"version": 1, "keys": [{"id", "key", "scope"}]}`),
    /// checking that every id matches its key.
    pub fn from_json(text: &str) -> Result<Keyring, Error> {
        let file: KeyringFile =
            serde_json::from_str(text).map_err(|e| Error::InvalidKeyring(e.to_string()))?;
        if file.version != 1 {
            return Err(Error::InvalidKeyring(format!(
                "unsupported version {} (expected 1)",
                file.version
            )));
        }
        let mut ring = Keyring::new();
        for (i, entry) in file.keys.iter().enumerate() {
            let key = Key::from_hex(&entry.key)
                .map_err(|e| Error::InvalidKeyring(format!("keys[{i}].key: {e}")))?;
            let id = KeyId::from_hex(&entry.id)
                .map_err(|e| Error::InvalidKeyring(format!("keys[{i}].id: {e}")))?;
            if key.id() != id {
                return Err(Error::InvalidKeyring(format!(
                    "keys[{i}]: id {id} does not match its key (expected {})",
                    key.id()
                )));
            }
            ring.insert(key, &entry.scope);
        }
        Ok(ring)
    }

    /// The keyring JSON format, pretty-printed.
    pub fn to_json(&self) -> String {
        let file = KeyringFile {
            version: 1,
            keys: self
                .entries
                .iter()
                .map(|e| KeyringFileEntry {
                    id: e.id.to_string(),
                    key: e.key.to_hex(),
                    scope: e.scope.clone(),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let key = Key::from_bytes([7u8; 32]);
        assert_eq!(Key::from_hex(&key.to_hex()), Ok(key.clone()));
        assert!(matches!(Key::from_hex("abc"), Err(Error::InvalidKey(m)) if m.contains("found 3")));
        let bad = format!("{}zz", "0".repeat(62));
        assert!(
            matches!(Key::from_hex(&bad), Err(Error::InvalidKey(m)) if m.contains("position 62"))
        );
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = Key::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains(&key.id().to_string()));
    }

    #[test]
    fn derivation_is_deterministic_and_scoped() {
        let master = Key::from_bytes([1u8; 32]);
        assert_eq!(master.derive("campaign:a"), master.derive("campaign:a"));
        assert_ne!(master.derive("campaign:a"), master.derive("campaign:b"));
        assert_ne!(master.derive("campaign:a"), master);
    }

    /// RFC 5869, test case 1, through the same HKDF configuration with the RFC's salt.
    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut okm = [0u8; 42];
        assert!(hk.expand(&info, &mut okm).is_ok());
        assert_eq!(
            to_hex(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn keyring_round_trip_and_validation() {
        let master = Key::from_bytes([9u8; 32]);
        let mut ring = Keyring::new();
        ring.insert(master.derive("campaign:a"), "campaign:a");
        ring.insert(master.derive("campaign:b"), "campaign:b");
        let text = ring.to_json();
        let back = Keyring::from_json(&text).expect("parses");
        assert_eq!(back.entries().len(), 2);
        let b = master.derive("campaign:b");
        assert_eq!(
            back.get(b.id()).map(|e| e.scope.as_str()),
            Some("campaign:b")
        );
        assert_eq!(
            back.by_scope("campaign:a").map(|e| e.id),
            Some(master.derive("campaign:a").id())
        );

        let tampered = text.replacen(&b.id().to_string(), "0000000000000000", 1);
        let err = Keyring::from_json(&tampered).expect_err("id mismatch");
        assert!(err.to_string().contains("does not match"), "{err}");
        let err = Keyring::from_json(r#"{"version": 2, "keys": []}"#).expect_err("version");
        assert!(err.to_string().contains("version 2"), "{err}");
        let err = Keyring::from_json(r#"{"version": 1, "keys": [{"id": "x", "key": "y"}]}"#)
            .expect_err("bad entry");
        assert!(err.to_string().contains("keys[0].key"), "{err}");
    }
}
