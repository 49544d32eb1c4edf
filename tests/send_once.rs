//! At most one send unless a resend is safe, proven on the vendor side: the mock vendor counts
//! every request it received. Connect failures (nothing sent) are retried for any method; every
//! resend is counted; the retry budget refuses resends beyond its share.
mod common;
use common::run::check_config;
use common::*;

const OK: &str = r#"{"id":"abcde","name":"ok"}"#;

fn posts(m: &Mock) -> usize {
    m.requests
        .lock()
        .expect("requests")
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

fn post(g: &Gate) -> Resp {
    g.req(
        "POST",
        "/pk/systems/abc/switches",
        &[("Content-Type", "application/json")],
        br#"{"members":["abcde"]}"#,
    )
}

#[test]
fn post_reset_after_it_was_read_is_sent_once() {
    let m = Mock::start(|_, _| vec![Act::Reset]);
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r = post(&g);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["reason"], "UPSTREAM_RESET");
    assert_eq!(posts(&m), 1, "the vendor saw the POST more than once");
    assert_eq!(g.retries("pk", "retry"), 0.0);
}

#[test]
fn post_on_a_pooled_connection_that_dies_is_not_resent() {
    // First request (a GET) succeeds on a kept-alive connection, which errgate pools; the POST
    // that reuses it is read by the vendor, which then resets the connection.
    let m = Mock::start(|r, _| {
        if r.method == "GET" {
            vec![Act::Send(json(200, OK))]
        } else {
            vec![Act::Reset]
        }
    });
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    assert_eq!(g.get("/pk/systems/abc").status, 200);
    let r = post(&g);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(posts(&m), 1, "the POST was resent on a fresh connection");
    assert_eq!(g.retries("pk", "retry"), 0.0);
}

#[test]
fn post_read_timeout_is_not_resent() {
    let m = Mock::start(|_, _| {
        vec![
            Act::Sleep(std::time::Duration::from_millis(1500)),
            Act::Send(json(200, OK)),
        ]
    });
    let g = GateConfig::new()
        .set("timeouts", json!({"read": "300ms"}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r = post(&g);
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(posts(&m), 1);
}

#[test]
fn get_read_timeout_is_resent_and_counted() {
    let m = Mock::start(|_, n| {
        if n == 0 {
            vec![
                Act::Sleep(std::time::Duration::from_millis(1500)),
                Act::Send(json(200, OK)),
            ]
        } else {
            vec![Act::Send(json(200, OK))]
        }
    });
    let g = GateConfig::new()
        .set("timeouts", json!({"read": "300ms"}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r = g.get("/pk/systems/abc");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.hits(), 2);
    assert_eq!(g.retries("pk", "retry"), 1.0);
    assert_eq!(g.retries("pk", "recovered"), 1.0);
}

#[test]
fn retry_disabled_never_resends_a_written_request() {
    let m = Mock::start(|_, _| vec![Act::Reset]);
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r = g.get("/pk/systems/abc");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(m.hits(), 1);
}

#[test]
fn connect_refused_is_retried_for_post() {
    // Nothing listens on this port: no attempt can have reached a vendor, so a resend is safe
    // even for a POST.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let g = GateConfig::new()
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &dead))
        .start();
    let r = post(&g);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["reason"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(
        g.retries("pk", "retry"),
        1.0,
        "the refused connect was not retried"
    );
    assert_eq!(g.retries("pk", "exhausted"), 1.0);
}

#[test]
fn connect_refused_is_not_retried_when_retries_are_off() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &dead))
        .start();
    let r = post(&g);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(g.retries("pk", "retry"), 0.0);
}

#[test]
fn retry_budget_refuses_resends_beyond_its_share_and_counts_them() {
    let m = Mock::start(|_, _| {
        vec![Act::Send(response(
            503,
            &[("Content-Type", "application/json")],
            br#"{"message":"Service unavailable","code":0}"#,
        ))]
    });
    let g = GateConfig::new()
        .set(
            "retry",
            json!({"budget_percent": 0, "budget_min_concurrency": 0}),
        )
        .route(RouteConfig::new("pk", "pluralkit", "/pk", &m.url()))
        .start();
    let r = g.get("/pk/systems/abc");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(m.hits(), 1, "a resend was made beyond the budget");
    assert_eq!(g.retries("pk", "retry_budget"), 1.0);
}

#[test]
fn retry_budget_percent_over_100_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("errgate.yaml");
    GateConfig::new()
        .set("retry", json!({"budget_percent": 150}))
        .route(RouteConfig::new(
            "pk",
            "pluralkit",
            "/pk",
            "http://127.0.0.1:9",
        ))
        .write(&cfg, free_port(), free_port(), &repo().join("catalogs"));
    let (code, text) = check_config(&cfg, &[]);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("budget_percent"), "{text}");
}
