use super::*;
use tokio::time::advance;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn key(route: usize, value: &str) -> CooldownKey {
    CooldownKey::new(format!("r{route}").as_str(), Some(value.as_bytes()))
}

#[tokio::test(start_paused = true)]
async fn hold_then_remaining_decreases() {
    let table = CooldownTable::new(16);
    let k = key(0, "sk-live-abc");
    table.hold(&k, secs(10), Instant::now());
    assert_eq!(table.remaining(&k, Instant::now()), Some(secs(10)));
    advance(secs(4)).await;
    assert_eq!(table.remaining(&k, Instant::now()), Some(secs(6)));
}

#[tokio::test(start_paused = true)]
async fn hold_expires() {
    let table = CooldownTable::new(16);
    let k = key(0, "a");
    table.hold(&k, secs(3), Instant::now());
    advance(Duration::from_millis(2_999)).await;
    assert_eq!(
        table.remaining(&k, Instant::now()),
        Some(Duration::from_millis(1))
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(table.remaining(&k, Instant::now()), None);
    // The expired entry was dropped on lookup.
    assert_eq!(table.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn hold_extends_but_never_shortens() {
    let table = CooldownTable::new(16);
    let k = key(1, "a");
    table.hold(&k, secs(10), Instant::now());
    table.hold(&k, secs(2), Instant::now());
    assert_eq!(table.remaining(&k, Instant::now()), Some(secs(10)));
    advance(secs(5)).await;
    table.hold(&k, secs(20), Instant::now());
    assert_eq!(table.remaining(&k, Instant::now()), Some(secs(20)));
    table.hold(&k, Duration::ZERO, Instant::now());
    assert_eq!(table.remaining(&k, Instant::now()), Some(secs(20)));
}

#[tokio::test(start_paused = true)]
async fn hold_is_capped_at_max_hold() {
    let table = CooldownTable::new(16);
    let k = key(0, "a");
    table.hold(&k, secs(86_400), Instant::now());
    assert_eq!(
        table.remaining(&k, Instant::now()),
        Some(DEFAULT_COOLDOWN_MAX_HOLD)
    );
    let short = CooldownTable::with_max_hold(16, secs(1));
    short.hold(&k, Duration::MAX, Instant::now());
    assert_eq!(short.remaining(&k, Instant::now()), Some(secs(1)));
}

#[tokio::test(start_paused = true)]
async fn zero_delay_records_nothing() {
    let table = CooldownTable::new(16);
    table.hold(&key(0, "a"), Duration::ZERO, Instant::now());
    assert!(table.is_empty());
}

#[tokio::test(start_paused = true)]
async fn keys_are_isolated_per_header_value_and_route() {
    let table = CooldownTable::new(16);
    let now = Instant::now();
    table.hold(&key(0, "alice"), secs(10), now);
    assert_eq!(table.remaining(&key(0, "alice"), now), Some(secs(10)));
    assert_eq!(table.remaining(&key(0, "bob"), now), None);
    assert_eq!(table.remaining(&key(1, "alice"), now), None);
    assert_eq!(table.remaining(&CooldownKey::new("r0", None), now), None);
    assert_eq!(
        table.remaining(&CooldownKey::new("r0", Some(b"")), now),
        None
    );
}

#[test]
fn same_header_value_gives_same_key() {
    assert_eq!(key(3, "alice"), key(3, "alice"));
    assert_ne!(key(3, "alice"), key(3, "alicf"));
    assert_ne!(key(3, "alice"), key(4, "alice"));
    assert_eq!(CooldownKey::new("r3", None), CooldownKey::new("r3", None));
    assert_ne!(
        CooldownKey::new("r3", None),
        CooldownKey::new("r3", Some(b""))
    );
    assert_eq!(key(3, "alice").route(), "r3");
}

#[test]
fn hashed_key_does_not_contain_raw_value() {
    let secret = b"sk_live_0123456789abcdef";
    let k = CooldownKey::new("r0", Some(secret));
    let digest = k.digest().expect("hashed");
    assert_eq!(digest.len(), KEY_DIGEST_LEN);
    assert!(!digest.windows(4).any(|w| secret.windows(4).any(|s| s == w)));
    let shown = format!("{k:?}");
    assert!(!shown.contains("sk_live"), "{shown}");
    // The digest is keyed by content: a different secret gives a different digest.
    let other = CooldownKey::new("r0", Some(b"sk_live_0123456789abcdeg"));
    assert_ne!(other.digest(), k.digest());
}

#[tokio::test(start_paused = true)]
async fn capacity_is_never_exceeded() {
    let cap = 50;
    let table = CooldownTable::new(cap);
    for i in 0..3 * cap {
        let delay = secs(10 + (i as u64 % 7));
        table.hold(&key(0, &format!("caller-{i}")), delay, Instant::now());
        assert!(table.len() <= cap, "{} after {i}", table.len());
    }
    assert_eq!(table.len(), cap);
    // The most recent key is always kept.
    assert!(table
        .remaining(&key(0, &format!("caller-{}", 3 * cap - 1)), Instant::now())
        .is_some());
}

#[tokio::test(start_paused = true)]
async fn full_table_evicts_soonest_expiring() {
    let table = CooldownTable::new(3);
    let now = Instant::now();
    table.hold(&key(0, "long"), secs(100), now);
    table.hold(&key(0, "short"), secs(5), now);
    table.hold(&key(0, "mid"), secs(50), now);
    table.hold(&key(0, "new"), secs(20), now);
    assert_eq!(table.len(), 3);
    assert_eq!(table.remaining(&key(0, "short"), now), None);
    assert!(table.remaining(&key(0, "long"), now).is_some());
    assert!(table.remaining(&key(0, "mid"), now).is_some());
    assert!(table.remaining(&key(0, "new"), now).is_some());
}

#[tokio::test(start_paused = true)]
async fn full_table_purges_expired_before_evicting() {
    let table = CooldownTable::new(3);
    table.hold(&key(0, "a"), secs(1), Instant::now());
    table.hold(&key(0, "b"), secs(1), Instant::now());
    table.hold(&key(0, "c"), secs(100), Instant::now());
    advance(secs(2)).await;
    table.hold(&key(0, "d"), secs(10), Instant::now());
    // Both expired entries went, the live one stayed.
    assert_eq!(table.len(), 2);
    assert!(table.remaining(&key(0, "c"), Instant::now()).is_some());
}

#[tokio::test(start_paused = true)]
async fn zero_capacity_records_nothing() {
    let table = CooldownTable::new(0);
    table.hold(&key(0, "a"), secs(10), Instant::now());
    assert_eq!(table.len(), 0);
    assert_eq!(table.active(Instant::now()), 0);
}

#[tokio::test(start_paused = true)]
async fn active_counts_held_keys_and_purges_expired() {
    let table = CooldownTable::new(16);
    table.hold(&key(0, "a"), secs(1), Instant::now());
    table.hold(&key(0, "b"), secs(5), Instant::now());
    table.hold(&key(1, "a"), secs(10), Instant::now());
    assert_eq!(table.active(Instant::now()), 3);
    advance(secs(1)).await;
    assert_eq!(table.len(), 3);
    assert_eq!(table.active(Instant::now()), 2);
    assert_eq!(table.len(), 2);
    advance(secs(10)).await;
    assert_eq!(table.active(Instant::now()), 0);
    assert!(table.is_empty());
}

#[tokio::test(start_paused = true)]
async fn table_is_shareable_across_tasks() {
    let table = std::sync::Arc::new(CooldownTable::default());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let t = table.clone();
        tasks.push(tokio::spawn(async move {
            t.hold(&key(i, "k"), secs(10), Instant::now());
        }));
    }
    for task in tasks {
        task.await.expect("task ran");
    }
    assert_eq!(table.active(Instant::now()), 8);
    assert_eq!(table.capacity(), DEFAULT_COOLDOWN_CAPACITY);
}

#[test]
fn keys_are_by_route_name_not_position() {
    // The same name gives the same key wherever the route sits in the list; another name never
    // matches, so a reload that reorders routes cannot move a hold.
    assert_eq!(
        CooldownKey::new("billing", Some(b"k")),
        CooldownKey::new("billing", Some(b"k"))
    );
    assert_ne!(
        CooldownKey::new("billing", Some(b"k")),
        CooldownKey::new("search", Some(b"k"))
    );
    assert_eq!(CooldownKey::new("billing", None).route(), "billing");
    let k = CooldownKey::new("billing", Some(b"k"));
    assert_eq!(CooldownKey::from_parts("billing", k.digest().copied()), k);
}

#[tokio::test(start_paused = true)]
async fn extended_hold_is_evicted_by_its_new_end() {
    // The expiry index must follow an extension, or eviction would pick the wrong entry.
    let table = CooldownTable::new(2);
    let now = Instant::now();
    table.hold(&key(0, "a"), secs(5), now);
    table.hold(&key(0, "b"), secs(10), now);
    table.hold(&key(0, "a"), secs(100), now);
    table.hold(&key(0, "c"), secs(20), now);
    assert_eq!(table.len(), 2);
    assert!(table.remaining(&key(0, "a"), now).is_some());
    assert_eq!(table.remaining(&key(0, "b"), now), None);
    assert!(table.remaining(&key(0, "c"), now).is_some());
}

#[tokio::test(start_paused = true)]
async fn full_table_stays_consistent_under_churn() {
    let table = CooldownTable::new(64);
    for i in 0..2_000u64 {
        table.hold(
            &key(0, &format!("c{}", i % 300)),
            secs(1 + i % 13),
            Instant::now(),
        );
        if i % 97 == 0 {
            advance(Duration::from_millis(700)).await;
        }
        assert!(table.len() <= 64);
    }
    let holds = table.lock();
    assert_eq!(holds.by_key.len(), holds.by_end.len());
    for (until, k) in &holds.by_end {
        assert_eq!(holds.by_key.get(k), Some(until));
    }
}

#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<(CooldownKey, Instant)>>);

impl HoldSink for Recorder {
    fn offer(&self, key: &CooldownKey, until: Instant) {
        self.0.lock().expect("lock").push((key.clone(), until));
    }
}

#[tokio::test(start_paused = true)]
async fn new_and_extended_holds_are_offered_to_the_sink() {
    let table = CooldownTable::new(16);
    let rec = std::sync::Arc::new(Recorder::default());
    assert!(table.attach_sink(rec.clone()));
    assert!(!table.attach_sink(rec.clone()), "attached only once");
    let now = Instant::now();
    table.hold(&key(0, "a"), secs(10), now);
    table.hold(&key(0, "a"), secs(5), now); // not an extension: not offered
    table.hold(&key(0, "a"), secs(20), now);
    let seen = rec.0.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![(key(0, "a"), now + secs(10)), (key(0, "a"), now + secs(20))]
    );
}

#[tokio::test(start_paused = true)]
async fn remote_holds_apply_locally_but_are_not_offered_back() {
    let table = CooldownTable::new(16);
    let rec = std::sync::Arc::new(Recorder::default());
    table.attach_sink(rec.clone());
    let now = Instant::now();
    assert!(table.apply_remote(&key(0, "a"), Duration::from_millis(2_500), now));
    assert_eq!(
        table.remaining(&key(0, "a"), now),
        Some(Duration::from_millis(2_500))
    );
    // A shorter remote hold never shortens a local one.
    assert!(!table.apply_remote(&key(0, "a"), secs(1), now));
    assert!(rec.0.lock().expect("lock").is_empty());
}

#[tokio::test(start_paused = true)]
async fn active_holds_lists_remaining_times_soonest_first() {
    let table = CooldownTable::new(16);
    let now = Instant::now();
    table.hold(&key(0, "b"), secs(9), now);
    table.hold(&key(0, "a"), secs(3), now);
    table.hold(&key(1, "x"), secs(1), now);
    advance(secs(1)).await;
    let holds = table.active_holds(Instant::now());
    assert_eq!(holds, vec![(key(0, "a"), secs(2)), (key(0, "b"), secs(8))]);
}
