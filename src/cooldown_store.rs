//! The fleet cooldown store: replicas share what vendors told them to hold back, through Redis.
//!
//! The request path never talks to Redis. Each replica keeps deciding from its local
//! [`CooldownTable`]; this module only moves holds between tables:
//!
//! - **out**: [`CooldownTable::hold`] offers a new or extended hold to [`StoreSink`], which
//!   `try_send`s it on a bounded channel (full => dropped and counted, never waits). The store
//!   task writes `SET {prefix}:cd:{digest}:{route} <ms> PX <ms>` (the key expires on its own, so a
//!   dead replica leaves nothing behind) and `PUBLISH {prefix}:cd "v1 <origin> <ms> <digest>
//!   <route>"`, where `<ms>` is the time left when it is written;
//! - **in**: the task is subscribed to `{prefix}:cd`; a message from another replica is applied
//!   with [`CooldownTable::apply_remote`] (remaining time from receipt, never shortening);
//! - **(re)connect**: subscribe first, then `SCAN` the active keys and apply each one's `PTTL`
//!   (Redis's own clock, so replica clock skew does not matter), then write this replica's own
//!   active holds (those learned while Redis was away), then serve. A `PING` every
//!   [`STORE_PING_EVERY`] notices a Redis that stopped answering.
//!
//! Failures (Redis down, slow, restarted, flushed) never reach a request: every Redis call has
//! the configured timeout, errors are counted and logged, the state turns `degraded`, and the
//! task reconnects with jittered exponential backoff ([`STORE_BACKOFF_BASE`] to
//! [`STORE_BACKOFF_MAX`]) while the local table keeps deciding alone.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::metrics::CooldownStoreMetrics;
use crate::retry::cooldown::{CooldownKey, CooldownTable, HoldSink, KEY_DIGEST_LEN};
use crate::retry::Backoff;

#[cfg(test)]
mod tests;

/// Key prefix when the config does not set one.
///
/// Why: names the application, so a Redis shared with other software shows whose keys these are.
pub const DEFAULT_STORE_PREFIX: &str = "errgate";

/// Timeout of each Redis call (connect, write, load, ping) when the config does not set one.
///
/// Why: far above a healthy round trip (well under 1 ms on a LAN), short enough that a stuck
/// Redis is declared degraded within a second.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// Holds queued for the store task before new ones are dropped (and counted).
///
/// Why: a burst of 429s across many keys fits; a Redis that cannot keep up costs memory bounded
/// by this, never request latency. A dropped hold still holds locally.
pub const STORE_QUEUE: usize = 4096;

/// First reconnect delay (before jitter).
///
/// Why: a Redis restart takes about this long to accept connections again.
pub const STORE_BACKOFF_BASE: Duration = Duration::from_millis(100);

/// Longest reconnect delay (before jitter).
///
/// Why: a fleet learns again within seconds of Redis coming back, without hammering a Redis that
/// stays down.
pub const STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How often a connected store checks that Redis still answers.
///
/// Why: a Redis that hangs (not closed) is only noticed by asking; once a second bounds how long
/// the replica believes it shares while it does not.
pub const STORE_PING_EVERY: Duration = Duration::from_secs(1);

/// Keys asked per `SCAN` step while loading.
const SCAN_COUNT: usize = 1000;

/// Message format version (first word of every published message).
const MESSAGE_VERSION: &str = "v1";

/// Digest field of a key without a header value.
const NO_DIGEST: &str = "-";

// === Settings ===

/// Where cooldowns are shared (`cooldown.store`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// `redis://` or `rediss://` URL as configured (may carry a password).
    pub url: String,
    /// Password from the environment or a file; overrides one in the URL.
    pub password: Option<String>,
    /// Key and channel prefix.
    pub prefix: String,
    /// Timeout of each Redis call.
    pub timeout: Duration,
}

impl fmt::Debug for StoreSettings {
    /// Never prints a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

// === impl StoreSettings ===

impl StoreSettings {
    /// Validate a `redis://` / `rediss://` URL and a prefix; the message says how to fix it.
    pub fn try_new(
        url: &str,
        password: Option<String>,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let url = url.trim();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!(
                "`{}` is neither `memory` nor a `redis://` or `rediss://` URL",
                redact_url(url)
            ));
        }
        if let Err(e) = redis::IntoConnectionInfo::into_connection_info(url) {
            return Err(format!(
                "`{}` is not a valid Redis URL: {e}",
                redact_url(url)
            ));
        }
        check_prefix(prefix)?;
        if timeout.is_zero() {
            return Err("the store timeout must be greater than zero".to_string());
        }
        Ok(Self {
            url: url.to_string(),
            password,
            prefix: prefix.to_string(),
            timeout,
        })
    }

    /// The URL without its password, for logs and the admin listener.
    pub fn target(&self) -> String {
        redact_url(&self.url)
    }

    fn connection_info(&self) -> redis::RedisResult<redis::ConnectionInfo> {
        let info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str())?;
        Ok(match &self.password {
            Some(p) => {
                let redis = info.redis_settings().clone().set_password(p);
                info.set_redis_settings(redis)
            }
            None => info,
        })
    }

    fn channel(&self) -> String {
        format!("{}:cd", self.prefix)
    }
}

/// A prefix is 1-64 of `[A-Za-z0-9._-]`, so it is never a `SCAN` glob pattern.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{prefix}` must be 1 to 64 letters, digits, `.`, `_` or `-`"
        ))
    }
}

/// `redis://user:secret@host/0` -> `redis://user:***@host/0`; anything else unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let shown = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        // `redis://secret@host` is a password alone in some clients: hide it too.
        "***".to_string()
    };
    format!("{scheme}://{shown}@{}", &rest[at + 1..])
}

// === Wire format (pure) ===

/// The Redis key of a hold: `{prefix}:cd:{digest hex or -}:{route}`.
pub fn redis_key(prefix: &str, key: &CooldownKey) -> String {
    format!("{prefix}:cd:{}:{}", digest_field(key), key.route())
}

/// The cooldown key back from a Redis key written by [`redis_key`]; `None` when it is not one.
pub fn parse_redis_key(prefix: &str, redis_key: &str) -> Option<CooldownKey> {
    let rest = redis_key.strip_prefix(prefix)?.strip_prefix(":cd:")?;
    let (digest, route) = rest.split_once(':')?;
    parse_key_parts(digest, route)
}

/// The message published for a hold: `v1 <origin> <remaining ms> <digest> <route>`.
pub fn encode_message(origin: &str, key: &CooldownKey, remaining_ms: u64) -> String {
    format!(
        "{MESSAGE_VERSION} {origin} {remaining_ms} {} {}",
        digest_field(key),
        key.route()
    )
}

/// A decoded hold message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldMessage {
    /// The publishing replica.
    pub origin: String,
    /// The hold's remaining time when it was published.
    pub remaining: Duration,
    /// Which key.
    pub key: CooldownKey,
}

/// Decode a message written by [`encode_message`]; `None` for anything else.
pub fn decode_message(payload: &[u8]) -> Option<HoldMessage> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(5, ' ');
    if parts.next()? != MESSAGE_VERSION {
        return None;
    }
    let origin = parts.next()?;
    let ms: u64 = parts.next()?.parse().ok()?;
    let key = parse_key_parts(parts.next()?, parts.next()?)?;
    Some(HoldMessage {
        origin: origin.to_string(),
        remaining: Duration::from_millis(ms),
        key,
    })
}

fn digest_field(key: &CooldownKey) -> String {
    key.digest()
        .map_or_else(|| NO_DIGEST.to_string(), hex::encode)
}

fn parse_key_parts(digest: &str, route: &str) -> Option<CooldownKey> {
    if route.is_empty()
        || route
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    let digest = if digest == NO_DIGEST {
        None
    } else {
        let mut out = [0u8; KEY_DIGEST_LEN];
        hex::decode_to_slice(digest, &mut out).ok()?;
        Some(out)
    };
    Some(CooldownKey::from_parts(route, digest))
}

/// Whole milliseconds in `d`, rounded up (a hold told too little would end too early).
fn ceil_ms(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

// === Status ===

/// Connection state of the store (closed set: the admin listener and metrics show it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// Connecting for the first time.
    Connecting,
    /// Connected, subscribed and loaded: holds are shared.
    Connected,
    /// The last attempt or the connection failed; reconnecting with backoff. Local holds still
    /// decide.
    Degraded,
}

impl StoreState {
    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::Connecting => "connecting",
            StoreState::Connected => "connected",
            StoreState::Degraded => "degraded",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => StoreState::Connected,
            2 => StoreState::Degraded,
            _ => StoreState::Connecting,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            StoreState::Connecting => 0,
            StoreState::Connected => 1,
            StoreState::Degraded => 2,
        }
    }
}

/// What a Redis call was doing when it failed (closed set: the `op` metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Opening the connections.
    Connect,
    /// Subscribing to the channel.
    Subscribe,
    /// Loading active keys.
    Load,
    /// Writing and publishing a hold.
    Write,
    /// The liveness ping, or the subscription closing.
    Ping,
}

impl StoreOp {
    /// Every variant, for registering metric label values up front.
    pub const ALL: [StoreOp; 5] = [
        StoreOp::Connect,
        StoreOp::Subscribe,
        StoreOp::Load,
        StoreOp::Write,
        StoreOp::Ping,
    ];

    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreOp::Connect => "connect",
            StoreOp::Subscribe => "subscribe",
            StoreOp::Load => "load",
            StoreOp::Write => "write",
            StoreOp::Ping => "ping",
        }
    }
}

/// Shared view of the store for the admin listener: state and counters, lock-free except the
/// last error text.
#[derive(Debug)]
pub struct StoreStatus {
    target: String,
    state: AtomicU8,
    errors: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    applied: AtomicU64,
    connects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

// === impl StoreStatus ===

impl StoreStatus {
    fn new(target: String) -> Self {
        Self {
            target,
            state: AtomicU8::new(StoreState::Connecting.as_u8()),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The current state.
    pub fn state(&self) -> StoreState {
        StoreState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether holds are not being shared right now.
    pub fn is_degraded(&self) -> bool {
        self.state() != StoreState::Connected
    }

    /// Store errors since start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Holds dropped because the queue to the store task was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// JSON for the admin listener (`GET /cooldown`): no password, no key values.
    pub fn to_json(&self) -> serde_json::Value {
        let last_error = self
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        serde_json::json!({
            "store": "redis",
            "target": self.target,
            "state": self.state().as_str(),
            "degraded": self.is_degraded(),
            "errors": self.errors(),
            "dropped": self.dropped(),
            "written": self.written.load(Ordering::Relaxed),
            "applied": self.applied.load(Ordering::Relaxed),
            "connects": self.connects.load(Ordering::Relaxed),
            "last_error": last_error,
        })
    }
}

// === Sink (request path side) ===

/// One hold on its way to Redis.
#[derive(Debug)]
struct Offer {
    key: CooldownKey,
    until: Instant,
}

/// The [`HoldSink`] attached to the cooldown table: a non-blocking `try_send`.
#[derive(Debug)]
pub struct StoreSink {
    tx: mpsc::Sender<Offer>,
    status: Arc<StoreStatus>,
    metrics: CooldownStoreMetrics,
}

impl HoldSink for StoreSink {
    fn offer(&self, key: &CooldownKey, until: Instant) {
        let offer = Offer {
            key: key.clone(),
            until,
        };
        if self.tx.try_send(offer).is_err() {
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.dropped.inc();
        }
    }
}

// === The store task ===

/// The Redis side of the fleet store: owns the connections; run it once with
/// [`CooldownStore::run`] (errgate runs it as a Pingora background service).
pub struct CooldownStore {
    settings: StoreSettings,
    table: Arc<CooldownTable>,
    status: Arc<StoreStatus>,
    metrics: CooldownStoreMetrics,
    origin: String,
    rx: Mutex<Option<mpsc::Receiver<Offer>>>,
}

/// Why a connected session ended.
enum Ended {
    Shutdown,
    Failed(StoreOp, String),
}

// === impl CooldownStore ===

impl CooldownStore {
    /// Build the store for `table` and attach its sink to the table, so holds recorded from now
    /// on are queued for Redis. Nothing connects until [`run`](Self::run).
    pub fn attach(
        settings: StoreSettings,
        table: Arc<CooldownTable>,
        metrics: CooldownStoreMetrics,
    ) -> Self {
        let (tx, rx) = mpsc::channel(STORE_QUEUE);
        let status = Arc::new(StoreStatus::new(settings.target()));
        let sink = StoreSink {
            tx,
            status: status.clone(),
            metrics: metrics.clone(),
        };
        if !table.attach_sink(Arc::new(sink)) {
            log::warn!("A cooldown store was already attached; this one only receives.");
        }
        metrics.connected.set(0);
        Self {
            settings,
            table,
            status,
            metrics,
            origin: format!("{:016x}", rand::random::<u64>()),
            rx: Mutex::new(Some(rx)),
        }
    }

    /// State and counters, for the admin listener.
    pub fn status(&self) -> Arc<StoreStatus> {
        self.status.clone()
    }

    /// Connect, share, reconnect on failure; returns when `shutdown` turns true (or changes) or
    /// when called a second time.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(mut rx) = self.rx.lock().ok().and_then(|mut r| r.take()) else {
            log::error!("The cooldown store task was started twice; the second one exits.");
            return;
        };
        // Valid by construction: base > 0, max >= base, jitter in [0, 1].
        let backoff = Backoff::try_new(STORE_BACKOFF_BASE, STORE_BACKOFF_MAX, 0.5).ok();
        let mut failures: u32 = 0;
        log::info!(
            "target={} prefix={} Sharing cooldowns through Redis.",
            self.settings.target(),
            self.settings.prefix
        );
        loop {
            let ended = self.session(&mut rx, &mut shutdown, &mut failures).await;
            let (op, err) = match ended {
                Ended::Shutdown => return,
                Ended::Failed(op, err) => (op, err),
            };
            failures = failures.saturating_add(1);
            self.fail(op, &err);
            let wait = backoff
                .map(|b| b.delay(failures, rand::random::<f64>()))
                .unwrap_or(STORE_BACKOFF_MAX);
            log::warn!(
                "target={} op={} error=\"{err}\" retry_in_ms={} Cooldown store unavailable; \
                 holds stay local until it is back.",
                self.settings.target(),
                op.as_str(),
                wait.as_millis()
            );
            // Wait, discarding queued holds: they stay in the local table and are written again
            // after reconnecting.
            let until = Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    _ = shutdown.changed() => return,
                    o = rx.recv() => if o.is_none() { return },
                }
            }
        }
    }

    fn fail(&self, op: StoreOp, err: &str) {
        self.status.errors.fetch_add(1, Ordering::Relaxed);
        self.status
            .state
            .store(StoreState::Degraded.as_u8(), Ordering::Release);
        if let Ok(mut e) = self.status.last_error.lock() {
            *e = Some(format!("{}: {err}", op.as_str()));
        }
        self.metrics.connected.set(0);
        self.metrics.errors.with_label_values(&[op.as_str()]).inc();
    }

    /// One connection's life: connect, subscribe, load, resync, then serve until a failure.
    async fn session(
        &self,
        rx: &mut mpsc::Receiver<Offer>,
        shutdown: &mut watch::Receiver<bool>,
        failures: &mut u32,
    ) -> Ended {
        use futures_util::StreamExt;
        let t = self.settings.timeout;
        let info = match self.settings.connection_info() {
            Ok(i) => i,
            Err(e) => return Ended::Failed(StoreOp::Connect, e.to_string()),
        };
        let client = match redis::Client::open(info) {
            Ok(c) => c,
            Err(e) => return Ended::Failed(StoreOp::Connect, e.to_string()),
        };
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t));
        let mut conn =
            match timed(t, client.get_multiplexed_async_connection_with_config(&cfg)).await {
                Ok(c) => c,
                Err(e) => return Ended::Failed(StoreOp::Connect, e),
            };
        let mut pubsub = match timed(t, client.get_async_pubsub()).await {
            Ok(p) => p,
            Err(e) => return Ended::Failed(StoreOp::Connect, e),
        };
        if let Err(e) = timed(t, pubsub.subscribe(self.settings.channel())).await {
            return Ended::Failed(StoreOp::Subscribe, e);
        }
        let mut messages = pubsub.into_on_message();
        // Subscribed before loading: a hold published meanwhile is seen either way.
        if let Err(e) = self.load(&mut conn).await {
            return Ended::Failed(StoreOp::Load, e);
        }
        if let Err(e) = self.resync(&mut conn).await {
            return Ended::Failed(StoreOp::Write, e);
        }
        *failures = 0;
        self.status.connects.fetch_add(1, Ordering::Relaxed);
        self.status
            .state
            .store(StoreState::Connected.as_u8(), Ordering::Release);
        self.metrics.connected.set(1);
        log::info!(
            "target={} Cooldown store connected.",
            self.settings.target()
        );
        let mut ping =
            tokio::time::interval_at(Instant::now() + STORE_PING_EVERY, STORE_PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return Ended::Shutdown,
                o = rx.recv() => {
                    let Some(offer) = o else { return Ended::Shutdown };
                    if let Err(e) = self.write(&mut conn, &offer).await {
                        return Ended::Failed(StoreOp::Write, e);
                    }
                }
                m = messages.next() => {
                    let Some(msg) = m else {
                        return Ended::Failed(StoreOp::Ping, "subscription closed".to_string());
                    };
                    self.receive(msg.get_payload_bytes());
                }
                _ = ping.tick() => {
                    let pong = timed(t, redis::cmd("PING").query_async::<String>(&mut conn)).await;
                    if let Err(e) = pong {
                        return Ended::Failed(StoreOp::Ping, e);
                    }
                }
            }
        }
    }

    /// Apply one published message (not our own).
    fn receive(&self, payload: &[u8]) {
        let Some(m) = decode_message(payload) else {
            log::debug!(
                "len={} Ignored a malformed cooldown store message.",
                payload.len()
            );
            return;
        };
        if m.origin == self.origin {
            return;
        }
        self.apply(&m.key, m.remaining, "message");
    }

    fn apply(&self, key: &CooldownKey, remaining: Duration, source: &str) {
        if self.table.apply_remote(key, remaining, Instant::now()) {
            self.status.applied.fetch_add(1, Ordering::Relaxed);
            self.metrics.applied.with_label_values(&[source]).inc();
        }
    }

    /// Load every active key under the prefix (at most the table's capacity).
    async fn load(&self, conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
        let t = self.settings.timeout;
        let pattern = format!("{}:cd:*", self.settings.prefix);
        let mut cursor: u64 = 0;
        let mut seen = 0usize;
        loop {
            let (next, keys): (u64, Vec<String>) = timed(
                t,
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(conn),
            )
            .await?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("PTTL").arg(k);
                }
                let ttls: Vec<i64> = timed(t, pipe.query_async(conn)).await?;
                for (k, ttl) in keys.iter().zip(ttls) {
                    let (Some(key), Ok(ms)) = (
                        parse_redis_key(&self.settings.prefix, k),
                        u64::try_from(ttl),
                    ) else {
                        continue;
                    };
                    if ms > 0 {
                        self.apply(&key, Duration::from_millis(ms), "load");
                    }
                    seen += 1;
                }
            }
            cursor = next;
            if cursor == 0 || seen >= self.table.capacity() {
                return Ok(());
            }
        }
    }

    /// Write this replica's own active holds (learned while Redis was away, or lost in a flush).
    async fn resync(&self, conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
        let now = Instant::now();
        for (key, left) in self.table.active_holds(now) {
            self.write(
                conn,
                &Offer {
                    key,
                    until: now + left,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// `SET key ms PX ms` + `PUBLISH`, in one round trip.
    async fn write(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        offer: &Offer,
    ) -> Result<(), String> {
        let ms = ceil_ms(offer.until.saturating_duration_since(Instant::now()));
        if ms == 0 {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(redis_key(&self.settings.prefix, &offer.key))
            .arg(ms)
            .arg("PX")
            .arg(ms)
            .ignore()
            .cmd("PUBLISH")
            .arg(self.settings.channel())
            .arg(encode_message(&self.origin, &offer.key, ms))
            .ignore();
        timed(self.settings.timeout, pipe.query_async::<()>(conn)).await?;
        self.status.written.fetch_add(1, Ordering::Relaxed);
        self.metrics.written.inc();
        Ok(())
    }
}

/// [`CooldownStore::run`] as a Pingora background service, so it sees shutdown.
pub struct CooldownStoreService(pub Arc<CooldownStore>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for CooldownStoreService {
    async fn start(&self, shutdown: pingora::server::ShutdownWatch) {
        self.0.run(shutdown).await;
    }
}

/// A Redis call under `t`; both failures as text.
async fn timed<T>(
    t: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(t, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", t.as_millis())),
    }
}
