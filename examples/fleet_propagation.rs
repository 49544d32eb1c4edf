//! Fleet cooldown propagation latency: two cooldown tables, each with its own store task, on one
//! Redis; a hold recorded in A is timed until B's table answers for it. Used by
//! `benches/load/fleet.sh`; run alone as
//! `cargo run --release --example fleet_propagation -- redis://127.0.0.1:6379/0 [holds]`.
//!
//! What is measured is the whole sharing path: A's `hold` → queue → SET + PUBLISH → Redis →
//! B's subscription → B's table. B then answers the key's requests itself (no further I/O).

use std::sync::Arc;
use std::time::Duration;

use errgate::cooldown_store::{CooldownStore, StoreSettings, StoreState};
use errgate::metrics::CooldownStoreMetrics;
use errgate::retry::cooldown::{CooldownKey, CooldownTable};
use pingora_prometheus::prometheus::Registry;
use tokio::time::Instant;

fn store(url: &str, table: Arc<CooldownTable>) -> Result<Arc<CooldownStore>, String> {
    let settings = StoreSettings::try_new(url, None, "errgate-bench", Duration::from_millis(500))?;
    let metrics = CooldownStoreMetrics::register(&Registry::new()).map_err(|e| e.to_string())?;
    Ok(Arc::new(CooldownStore::attach(settings, table, metrics)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_string());
    let holds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    let (a, b) = (
        Arc::new(CooldownTable::default()),
        Arc::new(CooldownTable::default()),
    );
    let (sa, sb) = (store(&url, a.clone())?, store(&url, b.clone())?);
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    for s in [&sa, &sb] {
        let (s, rx) = (s.clone(), shutdown.clone());
        tokio::spawn(async move { s.run(rx).await });
    }
    let t0 = Instant::now();
    while [&sa, &sb]
        .iter()
        .any(|s| s.status().state() != StoreState::Connected)
    {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(format!("stores did not connect to {url}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut lat = Vec::with_capacity(holds);
    let run = rand::random::<u32>();
    for i in 0..holds {
        let key = CooldownKey::new("bench", Some(format!("{run}-{i}").as_bytes()));
        let start = Instant::now();
        a.hold(&key, Duration::from_secs(3), start);
        loop {
            if b.remaining(&key, Instant::now()).is_some() {
                lat.push(start.elapsed());
                break;
            }
            if start.elapsed() > Duration::from_secs(2) {
                return Err(format!("hold {i} did not arrive within 2 s"));
            }
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        // Spread the holds out a little, as real 429s are.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "holds={holds} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat[lat.len() - 1])
    );
    Ok(())
}
