//! The TAXII server's configuration: one TOML file naming the listener, the SQLite store, the
//! one API root, its collections and the partners allowed to read or write them. Loaded,
//! parsed and validated before anything starts; every error names its key path and line.
//!
//! Partner passwords are never in this file: each partner names a file holding its secret,
//! and only the secret's SHA-256 digest is kept in memory, in a type whose `Debug` does not
//! show it. Credentials are compared in constant time, against every partner, so neither the
//! answer nor its timing tells whether a user name exists.
//!
//! Not the store ([`crate::store`]) and not HTTP ([`crate::server`]).

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toml::Spanned;

use crate::TaxiiError;

/// The shortest partner secret accepted, in bytes.
pub const MIN_PASSWORD_BYTES: usize = 16;
/// `server.listen` when the file does not set it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9500";
/// `server.api_root` when the file does not set it.
pub const DEFAULT_API_ROOT: &str = "api";
/// `server.page_size` when the file does not set it.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// `server.max_page_size` when the file does not set it.
pub const DEFAULT_MAX_PAGE_SIZE: usize = 1000;
/// `server.max_content_length` when the file does not set it (10 MiB).
pub const DEFAULT_MAX_CONTENT_LENGTH: usize = 10 * 1024 * 1024;

/// A validated server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Socket address to listen on.
    pub listen: SocketAddr,
    /// The SQLite store (resolved against the configuration file's directory).
    pub db: PathBuf,
    /// The server's (and its API root's) title.
    pub title: String,
    /// A description of the server, if any.
    pub description: Option<String>,
    /// Contact information, if any.
    pub contact: Option<String>,
    /// Path segment of the one API root (`[a-z0-9-]{1,64}`).
    pub api_root: String,
    /// Items per page when a client gives no `limit` (default 100, or `max_page_size` when
    /// that is smaller).
    pub page_size: usize,
    /// The most items per page, whatever `limit` a client asks for.
    pub max_page_size: usize,
    /// The largest POST body accepted, in bytes.
    pub max_content_length: usize,
    /// The collections, in file order.
    pub collections: Vec<CollectionConfig>,
    /// The partners, in file order.
    pub partners: Vec<Partner>,
}

/// One `[[collection]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionConfig {
    /// Its id: a lowercase hyphenated UUID.
    pub id: String,
    /// Human-readable title.
    pub title: String,
    /// Description, if any.
    pub description: Option<String>,
    /// Alias usable in URLs in place of the id, if any.
    pub alias: Option<String>,
}

/// One `[[partner]]`: an HTTP Basic user and its rights.
#[derive(Debug, Clone)]
pub struct Partner {
    /// The HTTP Basic user name.
    pub name: String,
    /// Ids of the collections it may read.
    pub read: BTreeSet<String>,
    /// Ids of the collections it may write.
    pub write: BTreeSet<String>,
    secret: Secret,
}

/// The SHA-256 digest of a partner's secret; `Debug` never shows it.
#[derive(Clone)]
struct Secret([u8; 32]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Partner {
    /// Whether it may read collection `id`.
    pub fn can_read(&self, id: &str) -> bool {
        self.read.contains(id)
    }

    /// Whether it may write collection `id`.
    pub fn can_write(&self, id: &str) -> bool {
        self.write.contains(id)
    }
}

impl ServerConfig {
    /// Parses and validates a configuration file's text; relative paths (`db`,
    /// `password_file`) are resolved against `base_dir`, the file's directory. Password files
    /// are read here.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<ServerConfig, TaxiiError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            TaxiiError::ConfigSyntax {
                line,
                column,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        Validator { text, base_dir }.validate(raw)
    }

    /// The collection with this id or alias.
    pub fn collection(&self, id_or_alias: &str) -> Option<&CollectionConfig> {
        self.collections
            .iter()
            .find(|c| c.id == id_or_alias || c.alias.as_deref() == Some(id_or_alias))
    }

    /// The partner these HTTP Basic credentials belong to. Every partner is compared, in
    /// constant time, so the time taken does not tell which user names exist.
    pub fn authenticate(&self, user: &str, password: &[u8]) -> Option<&Partner> {
        let candidate: [u8; 32] = Sha256::digest(password).into();
        let mut found = None;
        for partner in &self.partners {
            let name = partner.name.as_bytes().ct_eq(user.as_bytes());
            let secret = partner.secret.0.ct_eq(&candidate);
            if bool::from(name & secret) {
                found = Some(partner);
            }
        }
        found
    }
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Format version; 1 when absent.
    version: Option<Spanned<i64>>,
    /// `[server]`.
    server: RawServer,
    /// `[[collection]]`.
    #[serde(default)]
    collection: Vec<Spanned<RawCollection>>,
    /// `[[partner]]`.
    #[serde(default)]
    partner: Vec<Spanned<RawPartner>>,
}

/// `[server]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    /// Socket address.
    listen: Option<Spanned<String>>,
    /// SQLite file.
    db: Spanned<String>,
    /// Title.
    title: Spanned<String>,
    /// Description.
    description: Option<String>,
    /// Contact.
    contact: Option<String>,
    /// API root path segment.
    api_root: Option<Spanned<String>>,
    /// Default page size.
    page_size: Option<Spanned<i64>>,
    /// Largest page size.
    max_page_size: Option<Spanned<i64>>,
    /// Largest POST body.
    max_content_length: Option<Spanned<i64>>,
}

/// `[[collection]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollection {
    /// UUID.
    id: Spanned<String>,
    /// Title.
    title: Spanned<String>,
    /// Description.
    description: Option<String>,
    /// Alias.
    alias: Option<Spanned<String>>,
}

/// `[[partner]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    /// HTTP Basic user name.
    name: Spanned<String>,
    /// File holding the secret.
    password_file: Spanned<String>,
    /// Collections it may read (ids or aliases).
    #[serde(default)]
    read: Vec<Spanned<String>>,
    /// Collections it may write (ids or aliases).
    #[serde(default)]
    write: Vec<Spanned<String>>,
}

struct Validator<'a> {
    text: &'a str,
    base_dir: &'a Path,
}

impl Validator<'_> {
    fn bad(
        &self,
        key: impl Into<String>,
        span: Range<usize>,
        reason: impl Into<String>,
    ) -> TaxiiError {
        TaxiiError::Config {
            key: key.into(),
            line: line_col(self.text, span.start).0,
            reason: reason.into(),
        }
    }

    fn validate(&self, raw: RawFile) -> Result<ServerConfig, TaxiiError> {
        if let Some(v) = &raw.version {
            if *v.get_ref() != 1 {
                return Err(self.bad("version", v.span(), "must be 1"));
            }
        }
        let s = raw.server;
        let listen = match &s.listen {
            Some(l) => l.get_ref().parse::<SocketAddr>().map_err(|_| {
                self.bad(
                    "server.listen",
                    l.span(),
                    "expected a socket address such as 127.0.0.1:9500",
                )
            })?,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| self.bad("server.listen", 0..0, "bad built-in default"))?,
        };
        if s.db.get_ref().trim().is_empty() {
            return Err(self.bad("server.db", s.db.span(), "must not be empty"));
        }
        let db = self.base_dir.join(s.db.get_ref());
        if s.title.get_ref().trim().is_empty() {
            return Err(self.bad("server.title", s.title.span(), "must not be empty"));
        }
        let api_root = match &s.api_root {
            Some(r) => {
                let v = r.get_ref();
                let ok = (1..=64).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(self.bad(
                        "server.api_root",
                        r.span(),
                        "must be 1 to 64 of a-z, 0-9, '-'",
                    ));
                }
                if v == "taxii2" {
                    return Err(self.bad(
                        "server.api_root",
                        r.span(),
                        "\"taxii2\" is the discovery path",
                    ));
                }
                v.clone()
            }
            None => DEFAULT_API_ROOT.to_owned(),
        };
        let max_page_size = self.count(
            "server.max_page_size",
            &s.max_page_size,
            DEFAULT_MAX_PAGE_SIZE,
        )?;
        // The default page size gives way to a smaller maximum; a page size set above it is
        // an error.
        let page_size = self.count(
            "server.page_size",
            &s.page_size,
            DEFAULT_PAGE_SIZE.min(max_page_size),
        )?;
        if page_size > max_page_size {
            let span = s.page_size.as_ref().map_or(0..0, Spanned::span);
            return Err(self.bad(
                "server.page_size",
                span,
                format!("{page_size} is more than server.max_page_size ({max_page_size})"),
            ));
        }
        let max_content_length = self.count(
            "server.max_content_length",
            &s.max_content_length,
            DEFAULT_MAX_CONTENT_LENGTH,
        )?;

        let collections = self.collections(&raw.collection)?;
        let partners = self.partners(&raw.partner, &collections)?;
        Ok(ServerConfig {
            listen,
            db,
            title: s.title.into_inner(),
            description: s.description,
            contact: s.contact,
            api_root,
            page_size,
            max_page_size,
            max_content_length,
            collections,
            partners,
        })
    }

    /// A positive integer setting, or its default.
    fn count(
        &self,
        key: &str,
        value: &Option<Spanned<i64>>,
        default: usize,
    ) -> Result<usize, TaxiiError> {
        match value {
            None => Ok(default),
            Some(v) => match usize::try_from(*v.get_ref()) {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.bad(key, v.span(), "must be a positive integer")),
            },
        }
    }

    fn collections(
        &self,
        raw: &[Spanned<RawCollection>],
    ) -> Result<Vec<CollectionConfig>, TaxiiError> {
        if raw.is_empty() {
            return Err(self.bad(
                "collection",
                0..0,
                "at least one [[collection]] is required",
            ));
        }
        let mut names = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, c) in raw.iter().enumerate() {
            let c = c.get_ref();
            let id = c.id.get_ref();
            let canonical = uuid::Uuid::parse_str(id).map(|u| u.hyphenated().to_string());
            if canonical.as_deref() != Ok(id.as_str()) {
                return Err(self.bad(
                    format!("collection[{i}].id"),
                    c.id.span(),
                    format!("{id:?} is not a lowercase hyphenated UUID"),
                ));
            }
            if !names.insert(id.clone()) {
                return Err(self.bad(
                    format!("collection[{i}].id"),
                    c.id.span(),
                    format!("{id} is used twice"),
                ));
            }
            if c.title.get_ref().trim().is_empty() {
                return Err(self.bad(
                    format!("collection[{i}].title"),
                    c.title.span(),
                    "must not be empty",
                ));
            }
            if let Some(alias) = &c.alias {
                let a = alias.get_ref();
                let ok = (1..=64).contains(&a.len())
                    && a.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    return Err(self.bad(
                        format!("collection[{i}].alias"),
                        alias.span(),
                        "must be 1 to 64 of A-Z, a-z, 0-9, '-', '_', '.'",
                    ));
                }
                if uuid::Uuid::parse_str(a).is_ok() {
                    return Err(self.bad(
                        format!("collection[{i}].alias"),
                        alias.span(),
                        "must not be a UUID",
                    ));
                }
                if !names.insert(a.clone()) {
                    return Err(self.bad(
                        format!("collection[{i}].alias"),
                        alias.span(),
                        format!("{a:?} is used twice"),
                    ));
                }
            }
            out.push(CollectionConfig {
                id: id.clone(),
                title: c.title.get_ref().clone(),
                description: c.description.clone(),
                alias: c.alias.as_ref().map(|a| a.get_ref().clone()),
            });
        }
        Ok(out)
    }

    fn partners(
        &self,
        raw: &[Spanned<RawPartner>],
        collections: &[CollectionConfig],
    ) -> Result<Vec<Partner>, TaxiiError> {
        if raw.is_empty() {
            return Err(self.bad("partner", 0..0, "at least one [[partner]] is required"));
        }
        let mut names = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, p) in raw.iter().enumerate() {
            let p = p.get_ref();
            let name = p.name.get_ref();
            let ok = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
            if !ok {
                return Err(self.bad(
                    format!("partner[{i}].name"),
                    p.name.span(),
                    "must be 1 to 64 of A-Z, a-z, 0-9, '-', '_', '.', '@'",
                ));
            }
            if !names.insert(name.clone()) {
                return Err(self.bad(
                    format!("partner[{i}].name"),
                    p.name.span(),
                    format!("{name:?} is used twice"),
                ));
            }
            let resolve =
                |list: &[Spanned<String>], field: &str| -> Result<BTreeSet<String>, TaxiiError> {
                    let mut ids = BTreeSet::new();
                    for r in list {
                        let key = r.get_ref();
                        let Some(c) = collections
                            .iter()
                            .find(|c| &c.id == key || c.alias.as_ref() == Some(key))
                        else {
                            return Err(self.bad(
                                format!("partner[{i}].{field}"),
                                r.span(),
                                format!("{key:?} is not a collection id or alias"),
                            ));
                        };
                        ids.insert(c.id.clone());
                    }
                    Ok(ids)
                };
            let read = resolve(&p.read, "read")?;
            let write = resolve(&p.write, "write")?;
            let secret = self.secret(i, &p.password_file)?;
            out.push(Partner {
                name: name.clone(),
                read,
                write,
                secret,
            });
        }
        Ok(out)
    }

    /// Reads a password file: trailing line breaks trimmed, at least [`MIN_PASSWORD_BYTES`].
    fn secret(&self, i: usize, file: &Spanned<String>) -> Result<Secret, TaxiiError> {
        let key = format!("partner[{i}].password_file");
        let path = self.base_dir.join(file.get_ref());
        let bytes = std::fs::read(&path)
            .map_err(|e| self.bad(key.clone(), file.span(), format!("{}: {e}", path.display())))?;
        let mut end = bytes.len();
        while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let secret = &bytes[..end];
        if secret.len() < MIN_PASSWORD_BYTES {
            return Err(self.bad(
                key,
                file.span(),
                format!(
                    "the secret in {} is {} bytes, fewer than the {MIN_PASSWORD_BYTES} required",
                    path.display(),
                    secret.len()
                ),
            ));
        }
        Ok(Secret(Sha256::digest(secret).into()))
    }
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLL: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";

    fn dir_with_secret(secret: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("globex.secret"), secret).unwrap();
        dir
    }

    fn text(extra_server: &str, partner_extra: &str) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:9500\"\ndb = \"taxii.db\"\ntitle = \"Acme\"\n{extra_server}\
             [[collection]]\nid = \"{COLL}\"\ntitle = \"Campaigns\"\nalias = \"campaigns\"\n\
             [[partner]]\nname = \"globex\"\npassword_file = \"globex.secret\"\nread = [\"{COLL}\"]\n{partner_extra}"
        )
    }

    #[test]
    fn example_file_loads_with_defaults() {
        let dir = dir_with_secret("0123456789abcdef\n");
        let cfg = ServerConfig::from_toml(&text("", ""), dir.path()).unwrap();
        assert_eq!(cfg.api_root, "api");
        assert_eq!(cfg.page_size, 100);
        assert_eq!(cfg.max_page_size, 1000);
        assert_eq!(cfg.max_content_length, 10 * 1024 * 1024);
        assert_eq!(cfg.db, dir.path().join("taxii.db"));
        assert_eq!(cfg.collection("campaigns").unwrap().id, COLL);
        assert!(cfg.partners[0].can_read(COLL));
        assert!(!cfg.partners[0].can_write(COLL));
    }

    #[test]
    fn the_sample_in_examples_loads() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/intel/taxii.toml");
        let text = std::fs::read_to_string(&sample).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        for name in ["analysts", "peer-lab", "cert"] {
            std::fs::write(
                dir.path().join(format!("secrets/{name}.secret")),
                format!("{name}-password-0123456789\n"),
            )
            .unwrap();
        }
        let cfg = ServerConfig::from_toml(&text, dir.path()).unwrap();
        assert_eq!(cfg.partners.len(), 3);
        assert!(cfg.partners[0].can_write(COLL));
        assert!(!cfg.partners[1].can_write(COLL));
        assert!(cfg
            .authenticate("peer-lab", b"peer-lab-password-0123456789")
            .is_some());
        assert_eq!(cfg.collection("campaigns").unwrap().id, COLL);
    }

    #[test]
    fn trailing_newline_is_trimmed_and_passwords_compare() {
        let dir = dir_with_secret("0123456789abcdef\r\n");
        let cfg = ServerConfig::from_toml(&text("", ""), dir.path()).unwrap();
        assert!(cfg.authenticate("globex", b"0123456789abcdef").is_some());
        assert!(cfg.authenticate("globex", b"0123456789abcdef\n").is_none());
        assert!(cfg.authenticate("globex", b"wrong-wrong-wrong").is_none());
        assert!(cfg.authenticate("nobody", b"0123456789abcdef").is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let dir = dir_with_secret("0123456789abcdef");
        let cfg = ServerConfig::from_toml(&text("", ""), dir.path()).unwrap();
        let shown = format!("{cfg:?}");
        assert!(shown.contains("Secret(<redacted>)"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        let digest = format!("{:?}", Sha256::digest(b"0123456789abcdef").as_slice());
        assert!(!shown.contains(&digest));
    }

    #[test]
    fn short_password_is_refused_without_quoting_it() {
        let dir = dir_with_secret("short-secret\n");
        let err = ServerConfig::from_toml(&text("", ""), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("partner[0].password_file"), "{err}");
        assert!(err.contains("12 bytes"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let dir = dir_with_secret("0123456789abcdef");
        let err = ServerConfig::from_toml(&text("pgae_size = 3\n", ""), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 5, column 1:"), "{err}");
        assert!(err.contains("pgae_size"), "{err}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let dir = dir_with_secret("0123456789abcdef");
        let cases = [
            ("page_size = 0\n", "", "server.page_size (line 5)"),
            ("page_size = 2000\n", "", "server.page_size (line 5)"),
            ("api_root = \"API\"\n", "", "server.api_root (line 5)"),
            (
                "max_content_length = -1\n",
                "",
                "server.max_content_length (line 5)",
            ),
            ("", "write = [\"nope\"]\n", "partner[0].write (line 13)"),
        ];
        for (server, partner, want) in cases {
            let err = ServerConfig::from_toml(&text(server, partner), dir.path())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{server}{partner}: {err}");
        }
        let nowhere = text("", "").replace("127.0.0.1:9500", "nowhere");
        let err = ServerConfig::from_toml(&nowhere, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("server.listen (line 2)"), "{err}");
    }

    #[test]
    fn collections_and_partners_must_be_unique_and_well_formed() {
        let dir = dir_with_secret("0123456789abcdef");
        let twice = format!(
            "{}[[collection]]\nid = \"{COLL}\"\ntitle = \"again\"\n",
            text("", "")
        );
        let err = ServerConfig::from_toml(&twice, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("collection[1].id") && err.contains("twice"),
            "{err}"
        );

        let upper = text("", "").replace(COLL, &COLL.to_uppercase());
        let err = ServerConfig::from_toml(&upper, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("collection[0].id"), "{err}");

        let two = format!(
            "{}[[partner]]\nname = \"globex\"\npassword_file = \"globex.secret\"\n",
            text("", "")
        );
        let err = ServerConfig::from_toml(&two, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("partner[1].name") && err.contains("twice"),
            "{err}"
        );
    }
}
