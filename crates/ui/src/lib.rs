//! The investigator dashboard's front end, embedded: `index.html`, `app.js` and `app.css`,
//! built from `ui/` (`npm ci && npm run build`, which writes `assets/`) and committed, so
//! building Moat needs no Node.js; `.ci/run` rebuilds them and fails if they differ from the
//! committed files.
//!
//! [`router`] serves them under `/ui/` on the admin listener. The files hold no data and need
//! no token; the page asks for the admin token and sends it on every call to `/admin/…`, which
//! is where the data and the authorization are. Every answer carries a content security policy
//! that allows scripts, styles and connections from the same origin only and forbids framing.
//!
//! [`data`] holds what the listings show and how they are paged, shared by the gateway's admin
//! API and `moat ui`. [`offline`] answers the admin API from the output of `moat analyze`
//! and its traffic, read-only, for `moat ui`. Not here: reading the data (the gateway, the
//! CLI) and the pages' logic (`ui/src/main.js`).

pub mod data;
pub mod offline;
pub mod report;

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

/// The content security policy of every dashboard answer. Chart.js draws on canvases and
/// sets inline style attributes, hence `style-src 'unsafe-inline'`; scripts come only from
/// `app.js`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/ui/` (`""` for the page itself).
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

/// The embedded files.
pub const ASSETS: [Asset; 3] = [
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/app.css"),
    },
];

/// The strong ETags of [`ASSETS`], in the same order (a SHA-256 prefix of the bytes).
fn etags() -> &'static [String; 3] {
    static ETAGS: OnceLock<[String; 3]> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS.each_ref().map(|a| {
            let digest = Sha256::digest(a.bytes);
            let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
    })
}

/// The dashboard's routes: `/ui` (redirected to `/ui/`), `/ui/`, `/ui/app.js`, `/ui/app.css`,
/// and an empty `/favicon.ico`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        // Browsers ask for it on their own; no icon, and no 404 in their console.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { serve(0, &headers) }),
        )
        .route(
            "/ui/app.js",
            get(|headers: HeaderMap| async move { serve(1, &headers) }),
        )
        .route(
            "/ui/app.css",
            get(|headers: HeaderMap| async move { serve(2, &headers) }),
        )
}

/// Answers with asset `index`, or 304 when the client holds the same version.
fn serve(index: usize, headers: &HeaderMap) -> Response {
    let (Some(asset), Some(etag)) = (ASSETS.get(index), etags().get(index)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, etag: Option<&str>) -> Response {
        let mut req = axum::http::Request::get(path);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_the_policy() {
        for (path, kind) in [
            ("/ui/", "text/html"),
            ("/ui/app.js", "text/javascript"),
            ("/ui/app.css", "text/css"),
        ] {
            let resp = get(path, None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let h = resp.headers();
            assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind));
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert!(!body.is_empty(), "{path}");
        }
        let page = get("/ui/", None).await;
        let body = page.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains(r#"<script src="app.js"></script>"#));
        // No inline script: the policy would block it.
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[tokio::test]
    async fn a_known_version_gets_304_and_the_bare_path_redirects() {
        let first = get("/ui/app.js", None).await;
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = get("/ui/app.js", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let other = get("/ui/app.js", Some("\"stale\"")).await;
        assert_eq!(other.status(), StatusCode::OK);
        let bare = get("/ui", None).await;
        assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(bare.headers()[header::LOCATION], "/ui/");
    }

    #[test]
    fn the_bundle_puts_data_in_the_page_as_text_only() {
        let js = std::str::from_utf8(ASSETS[1].bytes).unwrap();
        // The sources never assign HTML; Chart.js's own code is checked by this too.
        assert!(!js.contains("insertAdjacentHTML"));
        assert!(!js.contains("document.write"));
    }
}
