//! Forward-proxy mode (issue 15): an unmodified vendor SDK reaches the scripted vendor through
//! errgate by environment alone (`HTTPS_PROXY`, `SSL_CERT_FILE`), with TLS intercepted for the
//! routed host; hosts without a route are tunnelled only when allow-listed, and refused hosts
//! and private addresses are never connected to (the target listeners count connections).
mod common;
use common::egress::*;
use common::*;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

const PK_SYSTEM: &str = r#"{"id":"exmpl","uuid":"a2b3c4d5-0000-0000-0000-000000000000","name":"Example","created":"2020-01-12T20:51:45.012345Z","privacy":null}"#;

/// PluralKit as scripted: own system with the right token, 401 otherwise, 404 code 20001 for
/// an unknown system.
fn pluralkit_mock() -> Mock {
    Mock::start(|req, _| {
        let body =
            if req.path == "/v2/systems/@me" && req.header("authorization") == Some("good-token") {
                json(200, PK_SYSTEM)
            } else if req.path == "/v2/systems/@me" {
                json(
                    401,
                    r#"{"message":"401: Missing or invalid Authorization header","code":0}"#,
                )
            } else {
                json(404, r#"{"message":"System not found.","code":20001}"#)
            };
        vec![Act::Send(body)]
    })
}

/// The gateway's only route: PluralKit by host name.
fn pluralkit_gate(mock: &Mock) -> GateConfig {
    GateConfig::new().route(
        RouteConfig::new("pluralkit", "pluralkit", "/", &mock.url())
            .set("host", "api.pluralkit.me"),
    )
}

const SDK_SCRIPT: &str = r#"
import json, sys, httpx, pluralkit
out = {}
c = pluralkit.Client("good-token", async_mode=False)
out["own_name"] = c.get_system().name
try:
    c.get_system("zzzzz")
    out["missing"] = "no error"
except pluralkit.SystemNotFound as e:
    out["missing"] = "SystemNotFound: " + str(e)
try:
    pluralkit.Client("bad-token", async_mode=False).get_system()
    out["bad_token"] = "no error"
except pluralkit.Unauthorized as e:
    out["bad_token"] = "Unauthorized: " + str(e)
r = httpx.get("https://api.pluralkit.me/v2/systems/zzzzz")
out["raw"] = {"status": r.status_code, "content_type": r.headers.get("content-type"), "body": r.json()}
print(json.dumps(out))
"#;

#[test]
fn pluralkit_sdk_reaches_the_vendor_through_the_proxy_with_intercepted_tls() {
    let ok = Command::new("python3")
        .args(["-c", "import pluralkit, httpx"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with the PyPI `pluralkit` SDK is required (.ci/install.d/31-egress-sdk.sh)"
    );

    let mock = pluralkit_mock();
    let pg = start_proxy_gate(pluralkit_gate(&mock), json!({}), INTERCEPT);
    let ca_pem = pg.gate.dir.path().join("ca.pem");
    let key_pem = std::fs::read_to_string(pg.gate.dir.path().join("ca.key")).expect("key");
    let script = pg.gate.dir.path().join("sdk.py");
    std::fs::write(&script, SDK_SCRIPT).expect("script");

    let out = Command::new("python3")
        .arg(&script)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{}", pg.proxy))
        .env("SSL_CERT_FILE", &ca_pem)
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK script failed: {}\nstdout: {stdout}\nerrgate log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        pg.gate.log_text()
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("script output JSON");

    // Success passed through; errors were normalized by the pluralkit route.
    assert_eq!(v["own_name"], "Example", "{v}");
    let missing = v["missing"].as_str().expect("missing");
    assert!(missing.starts_with("SystemNotFound"), "{missing}");
    assert!(
        missing.contains("SYSTEM_NOT_FOUND"),
        "the SDK saw errgate's problem: {missing}"
    );
    let bad = v["bad_token"].as_str().expect("bad_token");
    assert!(
        bad.starts_with("Unauthorized") && bad.contains("AUTHORIZATION_INVALID"),
        "{bad}"
    );
    assert_eq!(v["raw"]["status"], 404);
    assert_eq!(v["raw"]["content_type"], "application/problem+json");
    assert_eq!(v["raw"]["body"]["reason"], "SYSTEM_NOT_FOUND");
    assert_eq!(v["raw"]["body"]["domain"], "pluralkit");
    assert_problem_schema(&v["raw"]["body"]);

    // What the vendor saw: the SDK's paths and token, through errgate, in plain HTTP to the mock.
    let reqs = mock.requests.lock().expect("lock").clone();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v2/systems/@me",
            "/v2/systems/zzzzz",
            "/v2/systems/@me",
            "/v2/systems/zzzzz"
        ]
    );
    assert_eq!(reqs[0].header("authorization"), Some("good-token"));
    assert_eq!(reqs[2].header("authorization"), Some("bad-token"));

    assert_eq!(
        pg.gate
            .metric(r#"errgate_egress_connections_total{kind="intercepted"}"#),
        4.0
    );
    assert_eq!(
        pg.gate.metric(
            r#"errgate_requests_total{outcome="normalized",route="pluralkit",status="404"}"#
        ),
        2.0
    );

    // The CA key never reaches the log.
    let log = pg.gate.log_text();
    assert!(log.contains("kind=intercepted"), "{log}");
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "CA key material in the log");
    }
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[test]
fn absolute_form_http_to_a_routed_host_is_served_by_its_route() {
    let mock = pluralkit_mock();
    let pg = start_proxy_gate(pluralkit_gate(&mock), json!({}), NO_INTERCEPT);
    let mut a = proxy_send(
        pg.proxy,
        b"GET http://api.pluralkit.me/v2/systems/zzzzz HTTP/1.1\r\nHost: api.pluralkit.me\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(a.status, 404, "{}", a.head);
    assert!(
        a.head
            .to_ascii_lowercase()
            .contains("application/problem+json"),
        "{}",
        a.head
    );
    let body = a.json();
    assert_eq!(body["reason"], "SYSTEM_NOT_FOUND");
    assert_eq!(mock.hits(), 1);
    assert_eq!(
        mock.requests.lock().expect("lock")[0].path,
        "/v2/systems/zzzzz"
    );
    assert_eq!(
        pg.gate
            .metric(r#"errgate_egress_connections_total{kind="forwarded"}"#),
        1.0
    );
}

#[test]
fn allow_listed_host_is_tunnelled_byte_for_byte_without_interception() {
    let mock = pluralkit_mock();
    let echo = RawServer::start(true);
    let allow = json!({
        "allow": [{"host": "127.0.0.1", "ports": [echo.port], "allow_private": true}],
    });
    let pg = start_proxy_gate(pluralkit_gate(&mock), allow, INTERCEPT);

    // Data sent in the same write as the CONNECT head must not be lost; a TLS-looking record
    // must arrive as it is (nothing terminates TLS for a host without a route).
    let payload: Vec<u8> =
        b"\x16\x03\x01\x00\x05hello\x00\xff binary \r\n\r\n GET / HTTP/1.1\r\n".to_vec();
    let mut raw = format!(
        "CONNECT 127.0.0.1:{p} HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n",
        p = echo.port
    )
    .into_bytes();
    raw.extend_from_slice(&payload);
    let mut a = proxy_send(pg.proxy, &raw);
    assert_eq!(a.status, 200, "{}", a.head);
    let mut back = a.rest.clone();
    while back.len() < payload.len() {
        let mut chunk = [0u8; 1024];
        let n = a.stream.read(&mut chunk).expect("read echo");
        assert!(n > 0, "tunnel closed early");
        back.extend_from_slice(&chunk[..n]);
    }
    a.stream.write_all(b"second").expect("write");
    let mut second = [0u8; 6];
    a.stream.read_exact(&mut second).expect("read second");
    drop(a);

    assert_eq!(back, payload);
    assert_eq!(&second, b"second");
    let mut expected = payload.clone();
    expected.extend_from_slice(b"second");
    assert_eq!(
        echo.received(),
        expected,
        "the destination got exactly the client's bytes"
    );
    assert_eq!(echo.accepted(), 1);
    assert_eq!(mock.hits(), 0);
    assert_eq!(
        pg.gate
            .metric(r#"errgate_egress_connections_total{kind="tunnelled"}"#),
        1.0
    );
    assert_eq!(
        pg.gate
            .metric(r#"errgate_egress_connections_total{kind="intercepted"}"#),
        0.0
    );
    // Bytes are counted when the tunnel closes.
    let mut up = 0.0;
    for _ in 0..100 {
        up = pg
            .gate
            .metric(r#"errgate_egress_tunnel_bytes_total{direction="up"}"#);
        if up > 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(up, expected.len() as f64);
}

#[test]
fn a_host_not_allowed_gets_403_and_nothing_is_connected_to() {
    let mock = pluralkit_mock();
    let target = RawServer::start(false);
    let pg = start_proxy_gate(
        pluralkit_gate(&mock),
        json!({"allow": [{"host": "example.com", "ports": [443]}]}),
        INTERCEPT,
    );
    for raw in [
        format!(
            "CONNECT 127.0.0.1:{p} HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n",
            p = target.port
        ),
        format!(
            "GET http://127.0.0.1:{p}/x HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n",
            p = target.port
        ),
        "CONNECT not-allowed.invalid:443 HTTP/1.1\r\nHost: not-allowed.invalid:443\r\n\r\n"
            .to_string(),
        // Allowed name, wrong port.
        "CONNECT example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n\r\n".to_string(),
    ] {
        let mut a = proxy_send(pg.proxy, raw.as_bytes());
        assert_eq!(a.status, 403, "{raw}: {}", a.head);
        let body = a.json();
        assert_eq!(body["reason"], "EGRESS_DENIED", "{body}");
        assert_eq!(body["code"], "PERMISSION_DENIED");
        assert_eq!(body["domain"], "errgate");
        assert_problem_schema(&body);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        target.accepted(),
        0,
        "a refused destination was connected to"
    );
    assert_eq!(mock.hits(), 0);
    assert_eq!(
        pg.gate
            .metric(r#"errgate_egress_refusals_total{reason="denied"}"#),
        4.0
    );
    assert_eq!(
        pg.gate
            .metric(r#"errgate_egress_connections_total{kind="refused"}"#),
        4.0
    );
    assert!(pg.gate.log_text().contains("kind=refused reason=denied"));
}

#[test]
fn private_addresses_are_refused_unless_explicitly_allowed() {
    let mock = pluralkit_mock();
    let target = RawServer::start(false);
    // The names are allowed, but they resolve to loopback and nothing allows private addresses.
    let p = target.port;
    let allow = json!({
        "allow": [
            {"host": "localhost", "ports": [p]},
            {"host": "127.0.0.1", "ports": [p]},
            {"host": "::ffff:127.0.0.1", "ports": [p]},
        ],
        "allow_private": ["10.0.0.0/8"],
    });
    let pg = start_proxy_gate(pluralkit_gate(&mock), allow, NO_INTERCEPT);
    for host in ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"] {
        let raw = format!(
            "CONNECT {host}:{p} HTTP/1.1\r\nHost: {host}:{p}\r\n\r\n",
            p = target.port
        );
        let mut a = proxy_send(pg.proxy, raw.as_bytes());
        assert_eq!(a.status, 403, "{host}: {}", a.head);
        let body = a.json();
        assert_eq!(body["reason"], "EGRESS_PRIVATE_ADDRESS", "{host}: {body}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(target.accepted(), 0, "a private address was connected to");
    assert_eq!(
        pg.gate
            .metric(r#"errgate_egress_refusals_total{reason="private_address"}"#),
        3.0
    );
}

#[test]
fn a_bad_ca_key_stops_start_up_without_printing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = test_ca(dir.path());
    // Corrupt the key: a PEM block whose body is not a key.
    let bad = ca.key_pem.replace("-----\n", "-----\nQUJD");
    std::fs::write(&ca.key, &bad).expect("write");
    let mock = pluralkit_mock();
    let cfg = dir.path().join("errgate.yaml");
    pluralkit_gate(&mock)
        .set(
            "forward_proxy",
            json!({
                "listen": format!("127.0.0.1:{}", free_port()),
                "tls_intercept": {"ca_cert_file": ca.cert, "ca_key_file": ca.key},
            }),
        )
        .write(&cfg, free_port(), free_port(), &repo().join("catalogs"));
    let out = Command::new(env!("CARGO_BIN_EXE_errgate"))
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--pid-file")
        .arg(dir.path().join("pid"))
        .arg("--upgrade-sock")
        .arg(dir.path().join("up.sock"))
        .output()
        .expect("run errgate");
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ca.key") && err.contains("tls_intercept"),
        "{err}"
    );
    for line in bad.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!err.contains(line), "key text in the log: {err}");
    }
}
