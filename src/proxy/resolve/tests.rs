use super::*;

#[derive(Clone, Debug)]
enum Mode {
    Answer(Vec<SocketAddr>),
    Fail,
    /// The resolver is down: the lookup never returns.
    Hang,
}

#[derive(Clone)]
struct Fake {
    mode: Arc<Mutex<Mode>>,
    calls: Arc<AtomicUsize>,
}

impl Fake {
    fn new(mode: Mode) -> Fake {
        Fake {
            mode: Arc::new(Mutex::new(mode)),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Lookup for Fake {
    async fn lookup(&self, _host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = self.mode.lock().expect("lock").clone();
        match mode {
            Mode::Answer(a) => Ok(a),
            Mode::Fail => Err(std::io::Error::other("NXDOMAIN")),
            Mode::Hang => std::future::pending().await,
        }
    }
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 443))
}

const T: Duration = Duration::from_secs(2);

fn settings() -> DnsSettings {
    DnsSettings {
        ttl: Duration::from_secs(30),
        negative_ttl: Duration::from_secs(5),
    }
}

/// Lets spawned refresh tasks run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn fresh_answers_are_cached_for_the_ttl() {
    let fake = Fake::new(Mode::Answer(vec![addr(1)]));
    let r = Resolver::new(fake.clone());
    assert_eq!(
        r.resolve("api.example", 443, &settings(), T, Instant::now())
            .await,
        Ok(addr(1))
    );
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(
        r.resolve("api.example", 443, &settings(), T, Instant::now())
            .await,
        Ok(addr(1))
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn resolver_outage_with_a_stale_answer_does_not_make_requests_wait() {
    let fake = Fake::new(Mode::Answer(vec![addr(1)]));
    let r = Resolver::new(fake.clone());
    r.resolve("api.example", 443, &settings(), T, Instant::now())
        .await
        .expect("first lookup");
    tokio::time::advance(Duration::from_secs(31)).await;
    fake.set(Mode::Hang);
    let before = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            r.resolve("api.example", 443, &settings(), T, Instant::now())
                .await,
            Ok(addr(1))
        );
        settle().await;
    }
    // Served at once (the paused clock did not move), and only one refresh was started.
    assert_eq!(Instant::now(), before);
    assert_eq!(fake.calls(), 2);
    // The hung refresh times out; the stale answer keeps serving and the refresh is retried
    // after the negative TTL, once.
    tokio::time::sleep(T + Duration::from_millis(1)).await;
    assert_eq!(
        r.resolve("api.example", 443, &settings(), T, Instant::now())
            .await,
        Ok(addr(1))
    );
    settle().await;
    assert_eq!(fake.calls(), 2);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        r.resolve("api.example", 443, &settings(), T, Instant::now())
            .await,
        Ok(addr(1))
    );
    settle().await;
    assert_eq!(fake.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_background_refresh_replaces_the_answer() {
    let fake = Fake::new(Mode::Answer(vec![addr(1)]));
    let r = Resolver::new(fake.clone());
    r.resolve("api.example", 443, &settings(), T, Instant::now())
        .await
        .expect("first");
    tokio::time::advance(Duration::from_secs(31)).await;
    fake.set(Mode::Answer(vec![addr(2)]));
    // The stale answer serves while the refresh runs ...
    assert_eq!(
        r.resolve("api.example", 443, &settings(), T, Instant::now())
            .await,
        Ok(addr(1))
    );
    settle().await;
    // ... and the refreshed one afterwards, fresh again for a TTL.
    assert_eq!(
        r.resolve("api.example", 443, &settings(), T, Instant::now())
            .await,
        Ok(addr(2))
    );
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn failures_are_cached_briefly() {
    let fake = Fake::new(Mode::Fail);
    let r = Resolver::new(fake.clone());
    assert!(r
        .resolve("nx.example", 443, &settings(), T, Instant::now())
        .await
        .is_err());
    assert!(r
        .resolve("nx.example", 443, &settings(), T, Instant::now())
        .await
        .is_err());
    assert_eq!(fake.calls(), 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    fake.set(Mode::Answer(vec![addr(3)]));
    assert_eq!(
        r.resolve("nx.example", 443, &settings(), T, Instant::now())
            .await,
        Ok(addr(3))
    );
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hung_resolver_without_an_answer_fails_after_the_timeout_and_is_remembered() {
    let fake = Fake::new(Mode::Hang);
    let r = Resolver::new(fake.clone());
    let before = Instant::now();
    let e = r
        .resolve("api.example", 443, &settings(), T, Instant::now())
        .await;
    assert!(e.is_err_and(|e| e.contains("timed out")));
    assert_eq!(Instant::now() - before, T);
    // The next request does not wait again.
    let before = Instant::now();
    assert!(r
        .resolve("api.example", 443, &settings(), T, Instant::now())
        .await
        .is_err());
    assert_eq!(Instant::now(), before);
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn empty_answers_are_failures() {
    let fake = Fake::new(Mode::Answer(Vec::new()));
    let r = Resolver::new(fake.clone());
    assert!(r
        .resolve("api.example", 443, &settings(), T, Instant::now())
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn ip_literals_skip_resolution() {
    let fake = Fake::new(Mode::Fail);
    let r = Resolver::new(fake.clone());
    assert_eq!(
        r.resolve("127.0.0.1", 80, &settings(), T, Instant::now())
            .await,
        Ok(SocketAddr::from(([127, 0, 0, 1], 80)))
    );
    assert_eq!(
        r.resolve("[::1]", 80, &settings(), T, Instant::now())
            .await
            .map(|a| a.ip().is_loopback()),
        Ok(true)
    );
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn the_system_resolver_reads_etc_hosts() {
    let r = Resolver::default();
    let a = r
        .resolve("localhost", 80, &settings(), T, Instant::now())
        .await
        .expect("localhost resolves through /etc/hosts");
    assert!(a.ip().is_loopback());
}

#[tokio::test(start_paused = true)]
async fn answers_rotate() {
    let fake = Fake::new(Mode::Answer(vec![addr(1), addr(2)]));
    let r = Resolver::new(fake.clone());
    let a = r
        .resolve("api.example", 443, &settings(), T, Instant::now())
        .await;
    let b = r
        .resolve("api.example", 443, &settings(), T, Instant::now())
        .await;
    assert_ne!(a, b);
}
