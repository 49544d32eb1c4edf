//! Fleet cooldown through a real Redis: three errgate processes, one scripted vendor, one
//! `redis-server` started by the test (issue 14). A missing `redis-server` fails these tests.
mod common;
use common::fleet::*;
use common::run::check_config;
use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OK_BODY: &str = r#"{"id":"abcde","name":"ok"}"#;

/// PluralKit's 429 with a body hint of `ms` milliseconds.
fn pk429(ms: u64) -> Vec<u8> {
    let body = format!(r#"{{"message":"429: too many requests","retry_after":{ms},"code":0}}"#);
    response(
        429,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// A vendor that answers 429 (`ms` hint) to the first request of each API key listed in
/// `limited`, 200 to everything else; counts requests per key.
struct Vendor {
    mock: Mock,
    per_key: Arc<Mutex<HashMap<String, usize>>>,
}

impl Vendor {
    fn start(limited: &[(&str, u64)]) -> Vendor {
        let limited: HashMap<String, u64> =
            limited.iter().map(|(k, ms)| (k.to_string(), *ms)).collect();
        let per_key = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let pk = per_key.clone();
        let mock = Mock::start(move |req, _| {
            let key = req.header("x-api-key").unwrap_or("").to_string();
            let n = {
                let mut m = pk.lock().expect("lock");
                let c = m.entry(key.clone()).or_insert(0);
                *c += 1;
                *c
            };
            match limited.get(&key) {
                Some(ms) if n == 1 => vec![Act::Send(pk429(*ms))],
                _ => vec![Act::Send(json(200, OK_BODY))],
            }
        });
        Vendor { mock, per_key }
    }

    fn hits(&self, key: &str) -> usize {
        self.per_key
            .lock()
            .expect("lock")
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

/// One replica's config: route `pk` to the vendor, cooldowns keyed by `X-Api-Key` shared through
/// `redis`, retries off.
fn replica(vendor: &Vendor, redis: &Redis) -> GateConfig {
    GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set(
            "cooldown",
            json!({"key_header": "X-Api-Key", "store": redis.url(), "store_prefix": "fleettest"}),
        )
        .route(RouteConfig::new(
            "pk",
            "pluralkit",
            "/pk",
            &vendor.mock.url(),
        ))
}

/// Three gateways sharing cooldowns through `redis`, keyed by `X-Api-Key`, retries off.
fn fleet(vendor: &Vendor, redis: &Redis) -> [Gate; 3] {
    let cfg = replica(vendor, redis);
    let gates = [cfg.start(), cfg.start(), cfg.start()];
    for g in &gates {
        wait_store_state(g, "connected", Duration::from_secs(10));
    }
    gates
}

fn get(g: &Gate, key: &str) -> Resp {
    g.req("GET", "/pk/systems/abc", &[("X-Api-Key", key)], b"")
}

/// Asserts errgate's own cooldown answer and returns its remaining milliseconds.
fn assert_cooldown(r: &Resp, who: &str) -> u64 {
    assert_eq!(r.status, 429, "{who}: {}", r.text());
    let v = r.json();
    assert_problem_schema(&v);
    assert_eq!(v["reason"], "UPSTREAM_COOLDOWN", "{who}: {v}");
    assert_eq!(v["domain"], "errgate", "{who}: {v}");
    v["retry_after_ms"].as_u64().expect("retry_after_ms")
}

fn assert_vendor_rate_limit(r: &Resp) {
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_ne!(v["reason"], "UPSTREAM_COOLDOWN", "{v}");
    assert_eq!(v["retry_after_ms"].as_u64(), Some(3000), "{v}");
}

#[test]
fn one_hint_holds_the_whole_fleet_until_it_expires() {
    let redis = Redis::start();
    let vendor = Vendor::start(&[("k1", 3000)]);
    let [a, b, c] = fleet(&vendor, &redis);

    let r = get(&a, "k1");
    let t1 = Instant::now();
    assert_vendor_rate_limit(&r);
    assert_eq!(vendor.hits("k1"), 1);
    // B and C learn it through Redis (loopback: milliseconds; bounded wait, not a timing test).
    wait_active_local(&b, 1, Duration::from_secs(2));
    wait_active_local(&c, 1, Duration::from_secs(2));
    // Let some of the window pass, so the full hint and the remaining time differ clearly.
    std::thread::sleep((t1 + Duration::from_millis(500)).saturating_duration_since(Instant::now()));
    for (g, who) in [(&b, "B"), (&c, "C"), (&a, "A")] {
        let left = assert_cooldown(&get(g, "k1"), who);
        // The remaining time, not the full hint (slack: propagation on a loaded machine).
        let elapsed = t1.elapsed().as_millis() as u64;
        assert!(left <= 3000 && left > 0, "{who}: {left}");
        assert!(
            left <= 3000 - elapsed.min(3000) + 250,
            "{who}: {left} after {elapsed} ms"
        );
    }
    assert_eq!(
        vendor.hits("k1"),
        1,
        "the vendor was called during the window"
    );
    // Another key is not held anywhere.
    assert_eq!(get(&b, "k2").status, 200);
    // The key is in Redis with a TTL, under the prefix, without the raw API key.
    let keys = redis.command(&["KEYS", "fleettest:cd:*"]).expect("KEYS");
    assert!(keys.contains(":pk"), "{keys}");
    assert!(!keys.contains("k1"), "raw key in Redis: {keys}");
    assert!(b.metric(r#"errgate_cooldown_store_applied_total{source="message"}"#) >= 1.0);
    assert!(a.metric("errgate_cooldown_store_written_total") >= 1.0);

    // After the window every replica reaches the vendor again.
    std::thread::sleep(
        (t1 + Duration::from_millis(3200)).saturating_duration_since(Instant::now()),
    );
    for g in [&a, &b, &c] {
        let r = get(g, "k1");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, OK_BODY.as_bytes());
    }
    assert_eq!(vendor.hits("k1"), 4);
    // And Redis forgot the key by itself (TTL).
    let left = redis.command(&["KEYS", "fleettest:cd:*"]).expect("KEYS");
    assert_eq!(left.trim(), "*0", "{left}");
}

#[test]
fn a_replica_started_later_loads_the_active_holds() {
    let redis = Redis::start();
    let vendor = Vendor::start(&[("k1", 3000)]);
    let [a, _b, _c] = fleet(&vendor, &redis);
    assert_vendor_rate_limit(&get(&a, "k1"));
    let late = replica(&vendor, &redis).start();
    wait_store_state(&late, "connected", Duration::from_secs(10));
    assert_cooldown(&get(&late, "k1"), "late");
    assert_eq!(vendor.hits("k1"), 1);
    assert!(late.metric(r#"errgate_cooldown_store_applied_total{source="load"}"#) >= 1.0);
}

#[test]
fn redis_down_fails_nothing_holds_locally_and_sharing_resumes_when_it_returns() {
    let mut redis = Redis::start();
    let vendor = Vendor::start(&[("k1", 8000), ("k2", 3000)]);
    let [a, b, c] = fleet(&vendor, &redis);

    redis.kill();
    for g in [&a, &b, &c] {
        wait_store_state(g, "degraded", Duration::from_secs(5));
        // Ready, but says it does not share.
        let r = g.admin_get("/readyz");
        assert_eq!(r.status, 200);
        assert!(r.text().contains("degraded"), "{}", r.text());
    }
    // No request fails while Redis is down.
    for g in [&a, &b, &c] {
        for _ in 0..5 {
            let r = get(g, "k0");
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    assert_eq!(vendor.hits("k0"), 15);
    // A's own cooldown still holds.
    assert_vendor_rate_limit_ms(&get(&a, "k1"), 8000);
    assert_cooldown(&get(&a, "k1"), "A while Redis is down");
    assert_eq!(vendor.hits("k1"), 1);
    assert!(
        a.metric(r#"errgate_cooldown_store_errors_total{op="ping"}"#)
            + a.metric(r#"errgate_cooldown_store_errors_total{op="connect"}"#)
            >= 1.0
    );
    assert_eq!(a.metric("errgate_cooldown_store_connected"), 0.0);

    // Redis comes back (empty): every replica reconnects on its own, and A writes the hold it
    // learned meanwhile, so B and C learn it too.
    redis.restart();
    for g in [&a, &b, &c] {
        wait_store_state(g, "connected", Duration::from_secs(20));
        assert_eq!(g.admin_get("/readyz").text(), "ready\n");
    }
    wait_active_local(&b, 1, Duration::from_secs(2));
    wait_active_local(&c, 1, Duration::from_secs(2));
    assert_cooldown(&get(&b, "k1"), "B after Redis returned");
    assert_cooldown(&get(&c, "k1"), "C after Redis returned");
    assert_eq!(vendor.hits("k1"), 1);

    // New hints are shared again.
    let r = get(&c, "k2");
    assert_eq!(r.status, 429, "{}", r.text());
    wait_active_local(&a, 2, Duration::from_secs(2));
    wait_active_local(&b, 2, Duration::from_secs(2));
    assert_cooldown(&get(&a, "k2"), "A");
    assert_cooldown(&get(&b, "k2"), "B");
    assert_eq!(vendor.hits("k2"), 1);
}

fn assert_vendor_rate_limit_ms(r: &Resp, ms: u64) {
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_ne!(v["reason"], "UPSTREAM_COOLDOWN", "{v}");
    assert_eq!(v["retry_after_ms"].as_u64(), Some(ms), "{v}");
}

#[test]
fn flushed_redis_changes_nothing_for_requests() {
    let redis = Redis::start();
    let vendor = Vendor::start(&[("k1", 3000)]);
    let [a, b, _c] = fleet(&vendor, &redis);
    assert_vendor_rate_limit(&get(&a, "k1"));
    wait_active_local(&b, 1, Duration::from_secs(2));
    assert!(redis
        .command(&["FLUSHALL"])
        .expect("FLUSHALL")
        .starts_with("+OK"));
    // Holds already learned stay; new requests are served as before.
    assert_cooldown(&get(&b, "k1"), "B after FLUSHALL");
    assert_eq!(get(&b, "k3").status, 200);
    assert_eq!(cooldown_status(&b)["state"], "connected");
}

#[test]
fn bounded_load_with_the_store_on_fails_no_request() {
    let redis = Redis::start();
    // Every 20th key is rate limited once, so holds are written and published all along.
    let limited: Vec<(String, u64)> = (0..400)
        .step_by(20)
        .map(|i| (format!("u{i}"), 2000))
        .collect();
    let limited_ref: Vec<(&str, u64)> = limited.iter().map(|(k, ms)| (k.as_str(), *ms)).collect();
    let vendor = Vendor::start(&limited_ref);
    let gates = Arc::new(fleet(&vendor, &redis));
    let failed = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..4 {
        let (gates, failed, done) = (gates.clone(), failed.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            for i in 0..150 {
                let g = &gates[(t + i) % 3];
                let key = format!("u{}", (t * 150 + i) % 400);
                match try_request(
                    g.port,
                    "GET",
                    "/pk/systems/abc",
                    &[("X-Api-Key", &key)],
                    b"",
                ) {
                    // 200 or a 429 (the vendor's or errgate's cooldown) are answers; anything else
                    // (5xx, a cut connection) is a failure.
                    Ok(r) if r.status == 200 || r.status == 429 => {}
                    Ok(r) => {
                        eprintln!("failed: {} {}", r.status, r.text());
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        eprintln!("failed: {e}");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(done.load(Ordering::SeqCst), 600);
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    for g in gates.iter() {
        // A store hiccup on a loaded machine may cost a reconnect, never a request.
        wait_store_state(g, "connected", Duration::from_secs(10));
        let s = cooldown_status(g);
        assert_eq!(s["dropped"], 0, "{s}");
    }
}

#[test]
fn memory_store_is_the_default_and_shares_nothing() {
    let vendor = Vendor::start(&[("k1", 3000)]);
    let g = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set("cooldown", json!({"key_header": "X-Api-Key"}))
        .route(RouteConfig::new(
            "pk",
            "pluralkit",
            "/pk",
            &vendor.mock.url(),
        ))
        .start();
    let s = cooldown_status(&g);
    assert_eq!(s["store"], "memory", "{s}");
    assert_eq!(s["degraded"], false, "{s}");
    assert_eq!(g.admin_get("/readyz").text(), "ready\n");
    assert_vendor_rate_limit(&get(&g, "k1"));
    assert_cooldown(&get(&g, "k1"), "memory");
    assert_eq!(cooldown_status(&g)["active_local"], 1);
}

#[test]
fn bad_store_settings_are_config_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("errgate.yaml");
    GateConfig::new()
        .set(
            "cooldown",
            json!({
                "store": "http://cache:6379",
                "store_prefix": "a b",
                "store_password": {"env": "ERRGATE_TEST_UNSET_VAR"},
            }),
        )
        .route(
            RouteConfig::new("pk", "pluralkit", "/pk", "http://127.0.0.1:1")
                .set("cooldown", json!({"store": "redis://x"})),
        )
        .write(&cfg, free_port(), free_port(), &repo().join("catalogs"));
    let (code, text) = check_config(&cfg, &[]);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("cooldown.store_password"), "{text}");
    assert!(text.contains("ERRGATE_TEST_UNSET_VAR"), "{text}");
    assert!(text.contains("cooldown.store_prefix"), "{text}");
    assert!(
        text.contains("cooldown.store:") || text.contains("cooldown.store "),
        "{text}"
    );
    assert!(text.contains("routes[0].cooldown.store"), "{text}");
}

#[test]
fn reordering_routes_in_a_reload_keeps_each_hold_on_its_route() {
    // Holds are keyed by route name: swapping the routes' order must not move a hold.
    let vendor = Vendor::start(&[("k1", 5000)]);
    let url = vendor.mock.url();
    let base = GateConfig::new()
        .set("retry", json!({"enabled": false}))
        .set("cooldown", json!({"key_header": "X-Api-Key"}));
    let first = RouteConfig::new("first", "pluralkit", "/first", &url);
    let second = RouteConfig::new("second", "pluralkit", "/second", &url);
    let g = base
        .clone()
        .route(first.clone())
        .route(second.clone())
        .start();
    let key = [("X-Api-Key", "k1")];
    assert_vendor_rate_limit_ms(&g.req("GET", "/first/systems/abc", &key, b""), 5000);
    base.route(second)
        .route(first)
        .write(&g.config_path(), g.port, g.admin, &g.catalog_dir());
    let r = request(g.admin, "POST", "/-/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], "reloaded", "{}", r.text());
    let r = g.req("GET", "/second/systems/abc", &key, b"");
    assert_eq!(
        r.status,
        200,
        "the hold moved to the other route: {}",
        r.text()
    );
    assert_cooldown(&g.req("GET", "/first/systems/abc", &key, b""), "first");
    assert_eq!(vendor.hits("k1"), 2);
}

#[test]
fn fleet_deploy_config_is_the_default_plus_a_redis_store() {
    // deploy/kubernetes-fleet replaces the errgate-config ConfigMap: its file must stay the
    // default config plus the `cooldown` section, and pass `errgate check`.
    let base = std::fs::read_to_string(repo().join("deploy/config/errgate.yaml")).expect("base");
    let fleet = std::fs::read_to_string(repo().join("deploy/kubernetes-fleet/errgate.yaml"))
        .expect("fleet");
    let extra = fleet
        .strip_prefix(base.as_str())
        .expect("deploy/kubernetes-fleet/errgate.yaml must start with deploy/config/errgate.yaml");
    assert!(extra.contains("\ncooldown:\n  store: redis://"), "{extra}");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("errgate.yaml");
    let local = fleet.replace(
        "catalog_dir: /etc/errgate/catalogs",
        &format!("catalog_dir: {}", repo().join("catalogs").display()),
    );
    std::fs::write(&cfg, local).expect("write");
    let (code, text) = check_config(&cfg, &[]);
    assert_eq!(code, 0, "{text}");
}
