//! `errgate run`: load and validate, then build the Pingora server: the client listener, the
//! admin listener, the reloader background service and, when `cooldown.store` is a Redis URL,
//! the fleet cooldown store.

use super::{ConfigArg, EXIT_CONFIG};
use crate::access_log::AccessLog;
use crate::admin::AdminApp;
use crate::cooldown_store::{CooldownStore, CooldownStoreService};
use crate::metrics::{CooldownStoreMetrics, Metrics};
use crate::proxy::{ClientLimits, Gateway};
use crate::reloader::{publish_catalog_gauges, ReloaderService};
use crate::state::Shared;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    cfg: ConfigArg,
    /// Take over the listening sockets of a running errgate (graceful binary upgrade; send the
    /// old process SIGQUIT after starting this one).
    #[arg(long)]
    upgrade: bool,
    /// Unix socket used to hand listening sockets over during a graceful upgrade.
    #[arg(long, default_value = "/tmp/errgate_upgrade.sock")]
    upgrade_sock: String,
    /// PID file.
    #[arg(long, default_value = "/tmp/errgate.pid")]
    pid_file: String,
}

/// Runs the gateway until a shutdown signal.
pub fn run(args: Args) -> ExitCode {
    let shared = match Shared::load(args.cfg.config.clone(), SystemTime::now()) {
        Ok(r) => Arc::new(r),
        Err(errs) => {
            for e in &errs {
                log::error!(
                    "file={:?} place={:?} problem={:?} Cannot start: invalid configuration.",
                    e.file,
                    e.place,
                    e.message
                );
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let registry = pingora_prometheus::prometheus::default_registry().clone();
    let metrics = match Metrics::register(&registry) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            log::error!("error={e} Cannot register metrics.");
            return ExitCode::FAILURE;
        }
    };
    publish_catalog_gauges(&shared, &metrics);
    let forward_proxy = match crate::egress::setup(&shared, &registry) {
        Ok(f) => f,
        Err(e @ crate::egress::SetupError::Ca(_)) => {
            log::error!(
                "problem={:?} Cannot start: invalid configuration.",
                e.to_string()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            log::error!("error={:?} Cannot start the forward proxy.", e.to_string());
            return ExitCode::FAILURE;
        }
    };
    let snap = shared.snapshot();
    let config = &snap.config;
    let store = match &config.cooldown_store {
        None => None,
        Some(settings) => match CooldownStoreMetrics::register(&registry) {
            Ok(m) => Some(Arc::new(CooldownStore::attach(
                settings.clone(),
                shared.cooldowns.clone(),
                m,
            ))),
            Err(e) => {
                log::error!("error={e} Cannot register metrics.");
                return ExitCode::FAILURE;
            }
        },
    };

    let mut opt = Opt::parse_from_args(["errgate"]);
    opt.upgrade = args.upgrade;
    let mut conf = ServerConf::default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let env = std::env::var(super::threads::THREADS_ENV).ok();
    conf.threads = match super::threads::worker_threads(env.as_deref(), config.threads, cpus) {
        Ok(n) => n,
        Err(e) => {
            log::error!("problem={e:?} Cannot start: invalid configuration.");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let conf_threads = conf.threads;
    conf.grace_period_seconds = Some(config.grace_period_seconds);
    conf.graceful_shutdown_timeout_seconds = Some(config.grace_period_seconds);
    // Pingora's I/O timeouts (vendor body reads, client writes, the upstream pool's idle
    // timeout) on tokio's timer instead of Pingora's "fast" timer wheel: errgate's timeouts are
    // seconds long and almost always cancelled, which Pingora's docs say tokio's timer (with
    // cancellation clean-up) suits better, while the fast timer keeps each entry until its
    // deadline and reads the clock for every timed read or write, waiting or not; measured in
    // benches/load/README.md. Set in the server's configuration: `run_forever` applies this
    // setting at start, over any earlier call of `set_fast_timeout_to_tokio_threshold`.
    conf.fast_timeout_to_tokio_threshold_seconds = Some(0);
    conf.upgrade_sock = args.upgrade_sock;
    conf.pid_file = args.pid_file;
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let access_log = match AccessLog::start(&config.access_log, metrics.access_log_dropped.clone())
    {
        Ok(l) => l,
        Err(e) => {
            log::error!(
                "target={:?} error={e} Cannot open the access log.",
                config.access_log.target
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let gateway = Gateway::new(shared.clone(), metrics.clone()).with_access_log(access_log.clone());
    // Pingora's HTTP app behind errgate's client bounds (connection count, header deadline).
    let mut http = pingora::proxy::http_proxy(&server.configuration, gateway);
    // CONNECT reaches errgate's admission (instead of Pingora's bare 405) so it is answered like
    // every other disallowed method: 405 problem+json with `Allow`, never forwarded.
    let mut opts = pingora::apps::HttpServerOptions::default();
    opts.allow_connect_method_proxying = true;
    http.server_options = Some(opts);
    let app = ClientLimits::new(http, shared.clone());
    let mut proxy = Service::new("errgate".to_string(), app);
    // No L4 read buffer on client connections: Pingora's default zero-fills 64 KiB per accepted
    // connection (62 MiB at 1,000 connections); HTTP parsing keeps its own buffer. Measured in
    // benches/load/README.md (RSS at 1,000 connections 65-70 -> 58 MiB).
    proxy.add_listener(
        ListenerConfig::tcp(config.listen.clone()).l4_buffer(L4BufferSettings::default().read(0)),
    );

    let mut admin = Service::new(
        "errgate admin".to_string(),
        AdminApp {
            shared: shared.clone(),
            metrics: metrics.clone(),
            registry,
            cooldown_store: store.as_ref().map(|s| s.status()),
        },
    );
    admin.add_tcp(&config.admin_listen);
    // The admin listener needs no more than one thread.
    admin.threads = Some(1);

    let reloader = background_service(
        "errgate reloader",
        ReloaderService {
            shared: shared.clone(),
            metrics,
            access_log,
        },
    );
    log::info!(
        "listen={} admin_listen={} threads={} routes={} catalogs={} Starting errgate.",
        config.listen,
        config.admin_listen,
        conf_threads,
        config.routes.len(),
        snap.catalogs.len()
    );
    drop(snap);
    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(reloader);
    if let Some(store) = store {
        server.add_service(background_service(
            "errgate cooldown store",
            CooldownStoreService(store),
        ));
    }
    if let Some(f) = forward_proxy {
        server.add_service(background_service("errgate forward proxy", f));
    }
    server.run_forever()
}
