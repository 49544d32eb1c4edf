//! Admission, pure: from the request's facts and the shared state to `Admitted` (what to send
//! where) or a `Refusal` (the problem to answer, the vendor never contacted).
//!
//! Order: framing → CONNECT → route → method → path confinement → catalog → cooldown →
//! declared body size. No sockets, no clock reads (`now` is a parameter), so every refusal is
//! unit-tested here.

use crate::catalog::{CatalogSet, VendorCatalog};
use crate::config::{Config, Route};
use crate::confine::confine;
use crate::framing::{check_request_framing, FramingError, RequestFraming};
use crate::methods::AllowedMethods;
use crate::problem::{self, Problem};
use crate::retry::cooldown::{CooldownKey, CooldownTable};
use crate::retry::is_idempotent;
use http::{header, HeaderMap, Method};
use tokio::time::Instant;

/// What admission reads from the request.
pub struct RequestFacts<'r> {
    /// `Host` (or the authority of an absolute-form target).
    pub host: Option<&'r str>,
    /// Path and query as received.
    pub path_and_query: &'r str,
    /// Method.
    pub method: &'r Method,
    /// Request headers.
    pub headers: &'r HeaderMap,
    /// The body framing, or why it is ambiguous (`crate::framing`).
    pub framing: Result<RequestFraming, FramingError>,
}

impl<'r> RequestFacts<'r> {
    /// The facts of a Pingora request header. `raw_head` gives the head as received (HTTP/1);
    /// it is read only when `Transfer-Encoding` is present.
    pub fn of(
        req: &'r pingora::http::RequestHeader,
        raw_head: impl FnOnce() -> Option<bytes::Bytes>,
    ) -> Self {
        RequestFacts {
            framing: check_request_framing(req.version, &req.headers, raw_head),
            host: req
                .uri
                .host()
                .or_else(|| req.headers.get(header::HOST).and_then(|h| h.to_str().ok())),
            path_and_query: req.uri.path_and_query().map_or("/", |p| p.as_str()),
            method: &req.method,
            headers: &req.headers,
        }
    }
}

/// A request errgate will forward.
pub struct Admitted<'s> {
    /// Its route.
    pub route: &'s Route,
    /// The route's catalog.
    pub vendor: &'s VendorCatalog,
    /// Path and query on the vendor.
    pub upstream_path: String,
    /// The path (no query) after the route prefix, matched by catalog entries.
    pub match_path: String,
    /// Whether sending it twice is safe (method, or `Idempotency-Key`).
    pub idempotent: bool,
    /// The cooldown key, when the route's cooldown is on.
    pub cooldown_key: Option<CooldownKey>,
    /// An `observe` route's key is in cooldown: forwarded anyway, counted as what errgate would
    /// have answered from its cooldown.
    pub would_cooldown: bool,
    /// The client's body framing (exactly one; the vendor gets the same).
    pub framing: RequestFraming,
}

/// Why admission answered instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// No route matched.
    NoRoute,
    /// The route's vendor has no catalog (cross-checked at load; only a bug reaches this).
    NoCatalog,
    /// The route's key is in cooldown.
    Cooldown,
    /// The declared body is over the limit.
    TooLarge,
    /// Ambiguous or duplicated body framing (400).
    Malformed,
    /// The route does not allow the method (405).
    MethodNotAllowed,
    /// The path would leave the route's upstream base path (400).
    PathNotAllowed,
}

/// A request answered by errgate without contacting the vendor.
pub struct Refusal<'s> {
    /// The route, when one matched.
    pub route: Option<&'s Route>,
    /// Why.
    pub kind: RefusalKind,
    /// The answer.
    pub problem: Box<Problem>,
}

/// Decides whether a request is forwarded, and where.
pub fn admit<'s>(
    config: &'s Config,
    catalogs: &'s CatalogSet,
    cooldowns: &CooldownTable,
    req: &RequestFacts<'_>,
    now: Instant,
) -> Result<Admitted<'s>, Refusal<'s>> {
    let framing = match req.framing {
        Ok(f) => f,
        Err(e) => {
            return Err(Refusal {
                route: None,
                kind: RefusalKind::Malformed,
                problem: Box::new(Problem::malformed_request(&e.to_string())),
            })
        }
    };
    // CONNECT never matches a route (its target is an authority): 405 before routing.
    if req.method == Method::CONNECT {
        let allow = AllowedMethods::default();
        return Err(Refusal {
            route: None,
            kind: RefusalKind::MethodNotAllowed,
            problem: Box::new(Problem::method_not_allowed(
                req.method.as_str(),
                allow.allow_header(),
            )),
        });
    }
    let Some((route, rest)) = config.routes.find(req.host, req.path_and_query) else {
        let path = req.path_and_query.split('?').next().unwrap_or("");
        return Err(Refusal {
            route: None,
            kind: RefusalKind::NoRoute,
            problem: Box::new(Problem::no_route(path)),
        });
    };
    let refuse = |kind, problem| Refusal {
        route: Some(route),
        kind,
        problem: Box::new(problem),
    };
    if !route.methods.allows(req.method) {
        return Err(refuse(
            RefusalKind::MethodNotAllowed,
            Problem::method_not_allowed(req.method.as_str(), route.methods.allow_header()),
        ));
    }
    let rest = match confine(rest) {
        Ok(r) => r,
        Err(why) => {
            return Err(refuse(
                RefusalKind::PathNotAllowed,
                Problem::path_not_allowed(why),
            ))
        }
    };
    let Some(vendor) = catalogs.vendor(&route.vendor) else {
        let p = Problem::own(
            problem::Code::Internal,
            500,
            "NO_CATALOG",
            format!(
                "Route {} names vendor {} without a catalog.",
                route.name, route.vendor
            ),
        );
        return Err(refuse(RefusalKind::NoCatalog, p));
    };
    let cooldown_key = route.cooldown.enabled.then(|| {
        let v = route
            .cooldown
            .key_header
            .as_ref()
            .and_then(|h| req.headers.get(h))
            .map(|v| v.as_bytes());
        CooldownKey::new(route.name.clone(), v)
    });
    let mut would_cooldown = false;
    if let Some(key) = &cooldown_key {
        if let Some(left) = cooldowns.remaining(key, now) {
            // An observe route never answers from its cooldown; it counts that it would have.
            if route.mode == crate::mode::Mode::Observe {
                would_cooldown = true;
            } else {
                let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
                return Err(refuse(
                    RefusalKind::Cooldown,
                    Problem::cooldown(&route.name, ms),
                ));
            }
        }
    }
    if matches!(framing, RequestFraming::Length(n) if n > config.max_request_body_bytes) {
        return Err(refuse(
            RefusalKind::TooLarge,
            Problem::request_too_large(config.max_request_body_bytes),
        ));
    }
    Ok(Admitted {
        route,
        vendor,
        upstream_path: route.upstream.join_path(&rest),
        match_path: rest.split('?').next().unwrap_or("").to_string(),
        idempotent: is_idempotent(req.method, req.headers),
        cooldown_key,
        would_cooldown,
        framing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::load_catalogs;
    use crate::config::parse_config;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    fn setup(extra: &str) -> (Config, CatalogSet) {
        setup_with(extra, "")
    }

    fn setup_route(route_extra: &str) -> (Config, CatalogSet) {
        setup_with("", route_extra)
    }

    fn setup_with(extra: &str, route_extra: &str) -> (Config, CatalogSet) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let yaml = format!(
            "catalog_dir: {}\nmax_request_body_bytes: 100\n{extra}routes:\n  - name: pk\n    vendor: pluralkit\n    path_prefix: /pk\n    upstream: http://127.0.0.1:9/v2\n{route_extra}",
            root.join("catalogs").display()
        );
        let config = parse_config(&yaml, Path::new("/tmp/errgate-test.yaml")).expect("config");
        let catalogs = load_catalogs(&config.catalog_dir, SystemTime::now()).expect("catalogs");
        (config, catalogs)
    }

    fn facts<'a>(method: &'a Method, pq: &'a str, headers: &'a HeaderMap) -> RequestFacts<'a> {
        RequestFacts {
            host: None,
            path_and_query: pq,
            method,
            headers,
            framing: check_request_framing(http::Version::HTTP_11, headers, || None),
        }
    }

    #[test]
    fn refuses_disallowed_methods_with_allow_and_connect_before_routing() {
        let (config, catalogs) = setup("");
        let table = CooldownTable::new(10);
        let h = HeaderMap::new();
        let now = Instant::now();
        for m in ["TRACE", "PROPFIND", "CONNECT"] {
            let m = Method::from_bytes(m.as_bytes()).expect("method");
            let pq = if m == Method::CONNECT { "/" } else { "/pk/x" };
            let r = admit(&config, &catalogs, &table, &facts(&m, pq, &h), now)
                .err()
                .expect("refused");
            assert_eq!(r.kind, RefusalKind::MethodNotAllowed, "{m}");
            assert_eq!(r.problem.status, 405);
            assert_eq!(
                r.problem.allow.as_deref(),
                Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
            );
        }
        let (config, catalogs) = setup_route("    methods: [GET]\n");
        let post = Method::POST;
        let r = admit(&config, &catalogs, &table, &facts(&post, "/pk/x", &h), now)
            .err()
            .expect("refused");
        assert_eq!(r.problem.allow.as_deref(), Some("GET"));
    }

    #[test]
    fn confines_the_path_to_the_base_path() {
        let (config, catalogs) = setup("");
        let table = CooldownTable::new(10);
        let h = HeaderMap::new();
        let m = Method::GET;
        let now = Instant::now();
        for p in ["/pk/../x", "/pk/%2e%2e/x", "/pk/a%2fb", "/pk/a\\b"] {
            let r = admit(&config, &catalogs, &table, &facts(&m, p, &h), now)
                .err()
                .expect("refused");
            assert_eq!(r.kind, RefusalKind::PathNotAllowed, "{p}");
            assert_eq!(r.problem.reason, "PATH_NOT_ALLOWED");
        }
        let a = admit(
            &config,
            &catalogs,
            &table,
            &facts(&m, "/pk/a/../b?q=..", &h),
            now,
        )
        .ok()
        .expect("admitted");
        assert_eq!(a.upstream_path, "/v2/b?q=..");
        assert_eq!(a.match_path, "/b");
    }

    #[test]
    fn refuses_ambiguous_framing_before_anything_else() {
        let (config, catalogs) = setup("");
        let table = CooldownTable::new(10);
        let mut h = HeaderMap::new();
        h.append(header::CONTENT_LENGTH, http::HeaderValue::from_static("3"));
        h.append(header::CONTENT_LENGTH, http::HeaderValue::from_static("3"));
        let m = Method::POST;
        let r = admit(
            &config,
            &catalogs,
            &table,
            &facts(&m, "/nope", &h),
            Instant::now(),
        )
        .err()
        .expect("refused");
        assert_eq!(r.kind, RefusalKind::Malformed);
        assert_eq!(r.problem.status, 400);
    }

    #[test]
    fn admits_and_joins_the_upstream_path() {
        let (config, catalogs) = setup("");
        let table = CooldownTable::new(10);
        let h = HeaderMap::new();
        let m = Method::GET;
        let a = admit(
            &config,
            &catalogs,
            &table,
            &facts(&m, "/pk/systems/x?a=1", &h),
            Instant::now(),
        )
        .ok()
        .expect("admitted");
        assert_eq!(&*a.route.name, "pk");
        assert_eq!(a.upstream_path, "/v2/systems/x?a=1");
        assert_eq!(a.match_path, "/systems/x");
        assert!(a.idempotent);
        assert!(a.cooldown_key.is_some());
        let post = Method::POST;
        let a = admit(
            &config,
            &catalogs,
            &table,
            &facts(&post, "/pk/x", &h),
            Instant::now(),
        )
        .ok()
        .expect("admitted");
        assert!(!a.idempotent);
    }

    #[test]
    fn refuses_no_route_cooldown_and_too_large() {
        let (config, catalogs) = setup("");
        let table = CooldownTable::new(10);
        let m = Method::GET;
        let h = HeaderMap::new();
        let now = Instant::now();
        let r = admit(
            &config,
            &catalogs,
            &table,
            &facts(&m, "/nope?k=secret", &h),
            now,
        )
        .err()
        .expect("refused");
        assert_eq!(r.kind, RefusalKind::NoRoute);
        assert!(r.route.is_none());
        assert_eq!(r.problem.status, 404);

        table.hold(&CooldownKey::new("pk", None), Duration::from_secs(2), now);
        let r = admit(&config, &catalogs, &table, &facts(&m, "/pk/x", &h), now)
            .err()
            .expect("refused");
        assert_eq!(r.kind, RefusalKind::Cooldown);
        assert_eq!(r.problem.status, 429);
        assert_eq!(r.problem.retry_after_secs(), Some(2));

        let table = CooldownTable::new(10);
        let mut big = HeaderMap::new();
        big.insert(
            header::CONTENT_LENGTH,
            http::HeaderValue::from_static("101"),
        );
        let r = admit(&config, &catalogs, &table, &facts(&m, "/pk/x", &big), now)
            .err()
            .expect("refused");
        assert_eq!(r.kind, RefusalKind::TooLarge);
        assert_eq!(r.problem.status, 413);
    }
}
