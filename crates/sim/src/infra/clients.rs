//! Client software as the provider sees it: `User-Agent` strings and JA4 TLS fingerprints.
//!
//! Each library has a small set of JA4 fingerprints that share their cipher and extension
//! hashes (the same TLS stack gives the same JA4 family), and a version distribution skewed
//! towards a few popular releases, so many unrelated users share one user agent exactly, as
//! they do in real API logs. The JA4 strings are shaped like real ones but are not a
//! fingerprint database.

use crate::rng::{zipf_rank, SimRng};

/// One client library or browser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lib {
    /// User agent before the version (`OpenAI/Python`), or a full browser template.
    pub name: &'static str,
    /// How versions are written.
    pub version: Version,
    /// JA4 fingerprints of its TLS stack (one family).
    pub ja4: &'static [&'static str],
    /// Relative share among ordinary users.
    pub benign_weight: f64,
    /// Share of its users who stream responses.
    pub stream_share: f64,
    /// Whether it is a browser (sends array-of-parts content more often, streams).
    pub browser: bool,
}

/// Version scheme: `major.minor.patch` with the newest minor first in popularity.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Version {
    /// `{major}.{minor}.{patch}` with minor in `[lo, hi]` and patch below `patches`.
    Semver {
        major: u32,
        lo: u32,
        hi: u32,
        patches: u32,
    },
    /// A fixed string.
    Fixed(&'static str),
    /// A browser user agent with `{v}` replaced by a major version in `[lo, hi]`.
    Browser { lo: u32, hi: u32 },
}

const JA4_PYTHON: &[&str] = &[
    "t13d1812h1_85036bcba153_b0f5a3ae94b4",
    "t13d1813h1_85036bcba153_375ca2c5e164",
];
const JA4_NODE: &[&str] = &[
    "t13d1711h1_ce8bad7d3ae6_6d8bb8d7b3f2",
    "t13d1712h1_ce8bad7d3ae6_0f21f6d5b8ab",
];
const JA4_CURL: &[&str] = &["t13d3112h2_e8f1e7e78f70_6bebaf5329ac"];
const JA4_GO: &[&str] = &["t13d1312h2_f57a46bbacb6_e7c285222651"];
const JA4_CHROME: &[&str] = &[
    "t13d1516h2_8daaf6152771_02713d6af862",
    "t13d1517h2_8daaf6152771_b1ff8ab2d16f",
];
const JA4_SAFARI: &[&str] = &["t13d2014h2_a09f3c656075_14788d8d241b"];
const JA4_FIREFOX: &[&str] = &["t13d1715h2_5b57614c22b0_3d5424432f57"];
const JA4_OKHTTP: &[&str] = &["t13d1611h2_2b7296d6df81_5a4aaf6f0a2b"];

/// Indices into [`LIBS`] that scripts and servers use.
pub(crate) const OPENAI_PYTHON: usize = 0;
pub(crate) const PYTHON_REQUESTS: usize = 3;
pub(crate) const PYTHON_HTTPX: usize = 4;
pub(crate) const OPENAI_JS: usize = 2;
pub(crate) const ASYNC_OPENAI_PYTHON: usize = 1;
pub(crate) const CURL: usize = 5;
pub(crate) const GO_HTTP: usize = 7;
pub(crate) const CHROME: usize = 10;

#[rustfmt::skip]
pub(crate) static LIBS: &[Lib] = &[
    Lib { name: "OpenAI/Python", version: Version::Semver { major: 1, lo: 30, hi: 82, patches: 3 }, ja4: JA4_PYTHON, benign_weight: 34.0, stream_share: 0.3, browser: false },
    Lib { name: "AsyncOpenAI/Python", version: Version::Semver { major: 1, lo: 30, hi: 82, patches: 3 }, ja4: JA4_PYTHON, benign_weight: 8.0, stream_share: 0.4, browser: false },
    Lib { name: "OpenAI/JS", version: Version::Semver { major: 4, lo: 40, hi: 85, patches: 3 }, ja4: JA4_NODE, benign_weight: 20.0, stream_share: 0.7, browser: false },
    Lib { name: "python-requests", version: Version::Semver { major: 2, lo: 28, hi: 32, patches: 4 }, ja4: JA4_PYTHON, benign_weight: 8.0, stream_share: 0.05, browser: false },
    Lib { name: "python-httpx", version: Version::Semver { major: 0, lo: 25, hi: 28, patches: 3 }, ja4: JA4_PYTHON, benign_weight: 3.0, stream_share: 0.2, browser: false },
    Lib { name: "curl", version: Version::Semver { major: 8, lo: 1, hi: 11, patches: 2 }, ja4: JA4_CURL, benign_weight: 4.0, stream_share: 0.1, browser: false },
    Lib { name: "axios", version: Version::Semver { major: 1, lo: 5, hi: 7, patches: 9 }, ja4: JA4_NODE, benign_weight: 4.0, stream_share: 0.4, browser: false },
    Lib { name: "Go-http-client", version: Version::Fixed("2.0"), ja4: JA4_GO, benign_weight: 3.0, stream_share: 0.2, browser: false },
    Lib { name: "PostmanRuntime", version: Version::Semver { major: 7, lo: 36, hi: 43, patches: 3 }, ja4: JA4_NODE, benign_weight: 2.0, stream_share: 0.1, browser: false },
    Lib { name: "okhttp", version: Version::Semver { major: 4, lo: 9, hi: 12, patches: 1 }, ja4: JA4_OKHTTP, benign_weight: 2.0, stream_share: 0.6, browser: false },
    Lib { name: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36", version: Version::Browser { lo: 120, hi: 131 }, ja4: JA4_CHROME, benign_weight: 6.0, stream_share: 0.95, browser: true },
    Lib { name: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{v} Safari/605.1.15", version: Version::Browser { lo: 1, hi: 6 }, ja4: JA4_SAFARI, benign_weight: 2.0, stream_share: 0.95, browser: true },
    Lib { name: "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0", version: Version::Browser { lo: 120, hi: 131 }, ja4: JA4_FIREFOX, benign_weight: 2.0, stream_share: 0.95, browser: true },
];

/// Weights of [`LIBS`] among ordinary users.
pub(crate) fn benign_weights() -> Vec<f64> {
    LIBS.iter().map(|l| l.benign_weight).collect()
}

/// A user agent of `lib` with a popularity-skewed version (recent releases most common).
pub(crate) fn user_agent(lib: &Lib, rng: &mut SimRng) -> String {
    match lib.version {
        Version::Semver {
            major,
            lo,
            hi,
            patches,
        } => {
            let span = (hi - lo + 1) as usize;
            let minor = hi - zipf_rank(rng, span, 1.1) as u32;
            let patch = zipf_rank(rng, patches.max(1) as usize, 1.5);
            // The OpenAI SDKs write "OpenAI/Python 1.2.3"; generic HTTP clients "name/1.2.3".
            let sep = if lib.name.starts_with("OpenAI/") || lib.name.starts_with("AsyncOpenAI/") {
                ' '
            } else {
                '/'
            };
            format!("{}{sep}{major}.{minor}.{patch}", lib.name)
        }
        Version::Fixed(v) => format!("{}/{v}", lib.name),
        Version::Browser { lo, hi } => {
            let v = hi - zipf_rank(rng, (hi - lo + 1) as usize, 1.0) as u32;
            lib.name.replace("{v}", &v.to_string())
        }
    }
}

/// A JA4 fingerprint of `lib`: the first of its family mostly, a newer stack sometimes.
pub(crate) fn ja4(lib: &Lib, rng: &mut SimRng) -> &'static str {
    let i = zipf_rank(rng, lib.ja4.len(), 2.0);
    lib.ja4.get(i).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{rng_for, Stream};

    #[test]
    fn user_agents_look_like_their_library() {
        let mut rng = rng_for(1, Stream::Setup, 1);
        for lib in LIBS {
            let ua = user_agent(lib, &mut rng);
            assert!(!ua.contains("{v}"), "{ua}");
            if !lib.browser {
                assert!(ua.starts_with(lib.name), "{ua}");
            }
            assert!(lib.ja4.contains(&ja4(lib, &mut rng)));
        }
        assert_eq!(LIBS[OPENAI_PYTHON].name, "OpenAI/Python");
        assert_eq!(LIBS[PYTHON_REQUESTS].name, "python-requests");
        assert_eq!(LIBS[PYTHON_HTTPX].name, "python-httpx");
        assert_eq!(LIBS[OPENAI_JS].name, "OpenAI/JS");
        assert_eq!(LIBS[ASYNC_OPENAI_PYTHON].name, "AsyncOpenAI/Python");
        assert_eq!(LIBS[CURL].name, "curl");
        assert_eq!(LIBS[GO_HTTP].name, "Go-http-client");
        assert!(LIBS[CHROME].name.contains("Chrome"));
    }
}
