use super::*;

fn k(route: &str, value: Option<&str>) -> CooldownKey {
    CooldownKey::new(route, value.map(str::as_bytes))
}

#[test]
fn redis_key_round_trips() {
    for key in [
        k("pk", Some("alice")),
        k("pk", None),
        k("a.b-c_d", Some("")),
    ] {
        let rk = redis_key("errgate", &key);
        assert!(rk.starts_with("errgate:cd:"), "{rk}");
        assert!(rk.ends_with(key.route()), "{rk}");
        assert_eq!(parse_redis_key("errgate", &rk), Some(key));
    }
    assert_eq!(
        redis_key("p", &k("pk", None)),
        "p:cd:-:pk",
        "no header value: a readable key"
    );
}

#[test]
fn redis_key_never_contains_the_header_value() {
    let rk = redis_key("errgate", &k("pk", Some("sk_live_secret")));
    assert!(!rk.contains("sk_live_secret"), "{rk}");
}

#[test]
fn foreign_keys_are_not_parsed() {
    for bad in [
        "other:cd:-:pk",
        "errgate:xx:-:pk",
        "errgate:cd:zz:pk",
        "errgate:cd:-:",
        "errgate:cd:0011:pk",
        "errgate:cd:-",
        "errgate",
    ] {
        assert_eq!(parse_redis_key("errgate", bad), None, "{bad}");
    }
}

#[test]
fn message_round_trips() {
    let key = k("pk", Some("alice"));
    let m = encode_message("abc123", &key, 2_500);
    let d = decode_message(m.as_bytes()).expect("decodes");
    assert_eq!(
        d,
        HoldMessage {
            origin: "abc123".into(),
            remaining: Duration::from_millis(2_500),
            key
        }
    );
}

#[test]
fn malformed_messages_are_ignored() {
    for bad in [
        &b""[..],
        b"v2 o 10 - pk",
        b"v1 o -10 - pk",
        b"v1 o 10 - ",
        b"v1 o 10 nothex pk",
        b"v1 o ten - pk",
        b"v1 o 10 - pk extra",
        b"\xff\xfe",
    ] {
        assert_eq!(decode_message(bad), None, "{}", bad.escape_ascii());
    }
}

#[test]
fn urls_are_validated_with_a_clear_message() {
    let t = Duration::from_millis(100);
    assert!(StoreSettings::try_new("redis://127.0.0.1:6379/0", None, "errgate", t).is_ok());
    assert!(StoreSettings::try_new("rediss://cache.internal:6380/1", None, "e", t).is_ok());
    let e = StoreSettings::try_new("http://x", None, "errgate", t).unwrap_err();
    assert!(e.contains("redis://"), "{e}");
    let e = StoreSettings::try_new("redis://:pw@h:notaport/0", None, "errgate", t).unwrap_err();
    assert!(!e.contains("pw@"), "password leaked: {e}");
    assert!(StoreSettings::try_new("redis://h/0", None, "bad prefix*", t).is_err());
    assert!(StoreSettings::try_new("redis://h/0", None, "", t).is_err());
    assert!(StoreSettings::try_new("redis://h/0", None, "ok", Duration::ZERO).is_err());
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact_url("redis://user:s3cret@h:6379/0"),
        "redis://user:***@h:6379/0"
    );
    assert_eq!(redact_url("redis://:s3cret@h/0"), "redis://:***@h/0");
    assert_eq!(redact_url("rediss://s3cret@h/0"), "rediss://***@h/0");
    assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
    let s = StoreSettings::try_new(
        "redis://:s3cret@h/0",
        Some("other".into()),
        "errgate",
        Duration::from_millis(5),
    )
    .expect("valid");
    let shown = format!("{s:?} {}", s.target());
    assert!(
        !shown.contains("s3cret") && !shown.contains("other"),
        "{shown}"
    );
}

#[test]
fn password_setting_overrides_the_url() {
    let s = StoreSettings::try_new(
        "redis://:inurl@h/0",
        Some("fromenv".into()),
        "errgate",
        Duration::from_millis(5),
    )
    .expect("valid");
    let info = s.connection_info().expect("info");
    assert_eq!(info.redis_settings().password(), Some("fromenv"));
}

#[test]
fn ceil_ms_rounds_up() {
    assert_eq!(ceil_ms(Duration::from_micros(1)), 1);
    assert_eq!(ceil_ms(Duration::from_millis(3)), 3);
    assert_eq!(ceil_ms(Duration::ZERO), 0);
}

#[tokio::test]
async fn full_queue_drops_and_counts_without_blocking() {
    let reg = pingora_prometheus::prometheus::Registry::new();
    let metrics = CooldownStoreMetrics::register(&reg).expect("metrics");
    let table = Arc::new(CooldownTable::new(STORE_QUEUE * 2));
    let settings = StoreSettings::try_new(
        "redis://127.0.0.1:1/0",
        None,
        "t",
        Duration::from_millis(50),
    )
    .expect("valid");
    let store = CooldownStore::attach(settings, table.clone(), metrics.clone());
    // Nobody drains the queue (the task is not running): the overflow is dropped and counted.
    let now = Instant::now();
    for i in 0..STORE_QUEUE + 10 {
        table.hold(
            &k("pk", Some(&format!("c{i}"))),
            Duration::from_secs(5),
            now,
        );
    }
    assert_eq!(store.status().dropped(), 10);
    assert_eq!(metrics.dropped.get(), 10);
    // Every hold still holds locally.
    assert_eq!(table.active(now), STORE_QUEUE + 10);
}

#[tokio::test]
async fn unreachable_redis_degrades_and_counts_errors() {
    let reg = pingora_prometheus::prometheus::Registry::new();
    let metrics = CooldownStoreMetrics::register(&reg).expect("metrics");
    let table = Arc::new(CooldownTable::new(16));
    // Port 1 on loopback: refused at once.
    let settings = StoreSettings::try_new(
        "redis://127.0.0.1:1/0",
        None,
        "t",
        Duration::from_millis(50),
    )
    .expect("valid");
    let store = Arc::new(CooldownStore::attach(
        settings,
        table.clone(),
        metrics.clone(),
    ));
    let (stop, shutdown) = watch::channel(false);
    let s2 = store.clone();
    let task = tokio::spawn(async move { s2.run(shutdown).await });
    let t0 = Instant::now();
    while store.status().errors() == 0 && t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.status().errors() >= 1);
    assert_eq!(store.status().state(), StoreState::Degraded);
    assert_eq!(metrics.connected.get(), 0);
    assert!(metrics.errors.with_label_values(&["connect"]).get() >= 1);
    let json = store.status().to_json();
    assert_eq!(json["state"], "degraded");
    assert!(json["last_error"]
        .as_str()
        .is_some_and(|e| e.starts_with("connect")));
    // Holds still work locally while degraded.
    let now = Instant::now();
    table.hold(&k("pk", None), Duration::from_secs(3), now);
    assert!(table.remaining(&k("pk", None), now).is_some());
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .expect("task ran");
}
