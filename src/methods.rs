//! Per-route method allow-lists: a request whose method is not listed gets 405 with `Allow` and
//! is never forwarded.
//!
//! The default suits vendor REST APIs: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS. TRACE and
//! CONNECT can never be allowed: TRACE would echo the credentials errgate injects back to the
//! client, and CONNECT would turn the route into a tunnel. Pure.

use http::Method;

/// The default allow-list, in `Allow` order.
pub const DEFAULT_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Why a configured method list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodsError {
    /// Not an HTTP method token.
    #[error("`{0}` is not an HTTP method name")]
    Invalid(String),
    /// TRACE or CONNECT.
    #[error(
        "`{0}` can never be allowed: TRACE would echo injected credentials, CONNECT opens a tunnel"
    )]
    Forbidden(String),
    /// An empty list would refuse every request.
    #[error("the list is empty; remove the key for the default (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)")]
    Empty,
}

/// The methods a route accepts, with its `Allow` header value prebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedMethods {
    methods: Vec<Method>,
    allow: String,
}

impl Default for AllowedMethods {
    fn default() -> Self {
        Self::from_methods(DEFAULT_METHODS.to_vec())
    }
}

// === impl AllowedMethods ===

impl AllowedMethods {
    fn from_methods(methods: Vec<Method>) -> Self {
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        AllowedMethods { methods, allow }
    }

    /// Parses a configured list. Names are case-sensitive as HTTP says (`get` is not `GET`);
    /// duplicates are ignored.
    pub fn try_new<S: AsRef<str>>(names: &[S]) -> Result<Self, MethodsError> {
        if names.is_empty() {
            return Err(MethodsError::Empty);
        }
        let mut methods: Vec<Method> = Vec::with_capacity(names.len());
        for n in names {
            let n = n.as_ref().trim();
            let m = Method::from_bytes(n.as_bytes())
                .map_err(|_| MethodsError::Invalid(n.to_string()))?;
            if n.is_empty() {
                return Err(MethodsError::Invalid(n.to_string()));
            }
            if m == Method::TRACE || m == Method::CONNECT {
                return Err(MethodsError::Forbidden(n.to_string()));
            }
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        Ok(Self::from_methods(methods))
    }

    /// Whether a request with this method may be forwarded. TRACE and CONNECT never may.
    pub fn allows(&self, m: &Method) -> bool {
        self.methods.contains(m)
    }

    /// The `Allow` header value, e.g. `GET, HEAD, POST`.
    pub fn allow_header(&self) -> &str {
        &self.allow
    }

    /// The methods, in configured order.
    pub fn iter(&self) -> impl Iterator<Item = &Method> {
        self.methods.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_rest_methods_and_refuses_trace_and_connect() {
        let d = AllowedMethods::default();
        for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            assert!(
                d.allows(&Method::from_bytes(m.as_bytes()).expect("method")),
                "{m}"
            );
        }
        for m in ["TRACE", "CONNECT", "PROPFIND", "get", "BREW"] {
            assert!(
                !d.allows(&Method::from_bytes(m.as_bytes()).expect("method")),
                "{m}"
            );
        }
        assert_eq!(
            d.allow_header(),
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        );
    }

    #[test]
    fn configured_list_keeps_order_and_drops_duplicates() {
        let a = AllowedMethods::try_new(&["POST", "GET", "POST", "PROPFIND"]).expect("valid");
        assert_eq!(a.allow_header(), "POST, GET, PROPFIND");
        assert!(a.allows(&Method::from_bytes(b"PROPFIND").expect("method")));
        assert!(!a.allows(&Method::HEAD));
    }

    #[test]
    fn trace_connect_empty_and_garbage_are_config_errors() {
        assert_eq!(
            AllowedMethods::try_new(&["GET", "TRACE"]),
            Err(MethodsError::Forbidden("TRACE".into()))
        );
        assert_eq!(
            AllowedMethods::try_new(&["CONNECT"]),
            Err(MethodsError::Forbidden("CONNECT".into()))
        );
        assert_eq!(
            AllowedMethods::try_new::<&str>(&[]),
            Err(MethodsError::Empty)
        );
        assert!(matches!(
            AllowedMethods::try_new(&["G ET"]),
            Err(MethodsError::Invalid(_))
        ));
        assert!(matches!(
            AllowedMethods::try_new(&[""]),
            Err(MethodsError::Invalid(_))
        ));
    }
}
