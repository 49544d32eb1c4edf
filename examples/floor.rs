//! The floor of the load benchmark: a bare Pingora passthrough. A `ProxyHttp` with no filters
//! that proxies every request, path unchanged, to one plain-HTTP upstream. Same Pingora build,
//! same thread count and upstream pool size as errgate, so the ratio errgate/floor is the cost
//! of errgate's own work.
//!
//! `cargo run --release --example floor -- LISTEN UPSTREAM [THREADS]`
//! e.g. `floor 127.0.0.1:18081 127.0.0.1:18080 1`
//!
//! `FLOOR_L4_READ_BUFFER=BYTES` (optional) sets the listener's L4 read buffer instead of
//! Pingora's default (64 KiB, zero-filled per accepted connection), for memory experiments.

use async_trait::async_trait;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::Result;
use std::net::SocketAddr;

/// Upstream pool size: errgate's `UPSTREAM_POOL_SIZE`.
const POOL: usize = 256;

struct Floor {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: floor LISTEN UPSTREAM_ADDR [THREADS]";
    let listen = args.next().expect(usage);
    let upstream: SocketAddr = args.next().expect(usage).parse().expect(usage);
    let threads: usize = args.next().map_or(1, |t| t.parse().expect(usage));

    let opt = Opt::parse_from_args(["floor"]);
    let conf = ServerConf {
        threads,
        upstream_keepalive_pool_size: POOL,
        pid_file: format!("/tmp/errgate-floor-{}.pid", std::process::id()),
        upgrade_sock: format!("/tmp/errgate-floor-{}.sock", std::process::id()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Floor { upstream });
    match std::env::var("FLOOR_L4_READ_BUFFER")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(read) => proxy.add_listener(
            ListenerConfig::tcp(listen).l4_buffer(L4BufferSettings::default().read(read)),
        ),
        None => proxy.add_tcp(&listen),
    }
    server.add_service(proxy);
    server.run_forever()
}
