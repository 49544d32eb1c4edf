//! https upstreams: SNI and certificate verification with rustls, through a real TLS mock vendor
//! on 127.0.0.1 whose certificate is issued by a test CA.
mod common;
use common::run::check_config;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct TlsMock {
    port: u16,
    hits: Arc<AtomicUsize>,
    ca_pem: String,
}

/// A TLS server for 127.0.0.1 answering every request with `resp`.
fn tls_mock(resp: &'static [u8]) -> TlsMock {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("leaf cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let cfg = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .expect("server config"),
    );
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let (cfg, h) = (cfg.clone(), h.clone());
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                loop {
                    let mut r = BufReader::new(&mut tls);
                    let mut got_head = false;
                    loop {
                        let mut line = String::new();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => got_head = true,
                        }
                    }
                    drop(r);
                    if got_head {
                        h.fetch_add(1, Ordering::SeqCst);
                    }
                    if tls.write_all(resp).is_err() || tls.flush().is_err() {
                        return;
                    }
                }
            });
        }
    });
    TlsMock {
        port,
        hits,
        ca_pem: ca.pem(),
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\nX-Tls: yes\r\n\r\n{\"id\":\"over-tls\"}";

#[test]
fn https_upstream_verified_against_the_configured_ca_passes_through() {
    let m = tls_mock(OK);
    let ca = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(ca.path(), &m.ca_pem).expect("write ca");
    let up = format!("https://127.0.0.1:{}", m.port);
    let g = GateConfig::new()
        .set("retry", serde_json::json!({"enabled": false}))
        .route(
            RouteConfig::new("pk", "pluralkit", "/pluralkit", &up)
                .set("tls_ca_file", ca.path().display().to_string()),
        )
        .start();
    let r = g.get("/pluralkit/members/x");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), g.log_text());
    assert_eq!(r.body, b"{\"id\":\"over-tls\"}");
    assert_eq!(r.header("x-tls"), Some("yes"));
    assert_eq!(m.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn https_upstream_with_an_untrusted_certificate_is_refused() {
    let m = tls_mock(OK);
    let up = format!("https://127.0.0.1:{}", m.port);
    let g = GateConfig::new()
        .set("retry", serde_json::json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pluralkit", &up))
        .start();
    let r = g.get("/pluralkit/members/x");
    assert_eq!(r.status, 502, "{}", r.text());
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["code"], "UNAVAILABLE");
    assert_eq!(v["reason"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(
        m.hits.load(Ordering::SeqCst),
        0,
        "no request may cross an unverified connection"
    );
}

#[test]
fn a_bad_ca_file_is_a_config_error_with_its_path() {
    let bad = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(bad.path(), "not a certificate").expect("write");
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("e.yaml");
    GateConfig::new()
        .route(
            RouteConfig::new("a", "pluralkit", "/a", "https://h")
                .set("tls_ca_file", bad.path().display().to_string()),
        )
        .route(
            RouteConfig::new("b", "pluralkit", "/b", "http://h")
                .set("tls_ca_file", "/nonexistent.pem"),
        )
        .write(&cfg, free_port(), free_port(), &repo().join("catalogs"));
    let (code, err) = check_config(&cfg, &[]);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("routes[0].tls_ca_file") && err.contains("no PEM certificate"),
        "{err}"
    );
    assert!(
        err.contains("routes[1].tls_ca_file") && err.contains("only to an https upstream"),
        "{err}"
    );
    assert!(err.contains("cannot read `/nonexistent.pem`"), "{err}");
}

/// The builder writes what errgate reads.
#[test]
fn config_builder_renders_a_config_errgate_accepts() {
    let cfg = GateConfig::new()
        .set("retry", serde_json::json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", "http://127.0.0.1:1").set("host", "h"));
    let text = cfg.render(1, 2, std::path::Path::new("/c"));
    let parsed = errgate::config::parse_config(&text, std::path::Path::new("t.json"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(parsed.listen, "127.0.0.1:1");
    assert_eq!(parsed.routes.len(), 1);
    assert!(!parsed.routes.iter().next().expect("route").retry.enabled);
}
