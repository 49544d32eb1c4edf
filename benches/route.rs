//! Route lookup: `RouteTable::find` on a 20-route table (16 prefix routes, 4 host-bound), for a
//! prefix hit, a host-bound hit and a miss, as `forward::serve` calls it with the request's Host
//! and path-and-query.
//!
//! `cargo bench --bench route` (add `-- --quick` for a fast run).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use errgate::config::parse_config;
use std::fmt::Write;
use std::path::Path;

const VENDORS: [&str; 5] = ["pluralkit", "openim", "mantago", "microcms", "tencent-im"];

/// 16 prefix routes of varied depth and 4 host-bound ones.
fn config_yaml() -> String {
    let mut y = String::from("listen: 127.0.0.1:8080\ncatalog_dir: catalogs\nroutes:\n");
    let prefixes = [
        "/pluralkit",
        "/openim",
        "/mantago",
        "/microcms",
        "/tencent-im",
        "/v1/pluralkit",
        "/v1/openim",
        "/v1/mantago",
        "/v1/microcms",
        "/v2/tencent-im/chatbot",
        "/internal/billing",
        "/internal/search/v3",
        "/partners/acme/api",
        "/partners/globex/api",
        "/legacy",
        "/",
    ];
    for (i, p) in prefixes.iter().enumerate() {
        let v = VENDORS[i % VENDORS.len()];
        writeln!(
            y,
            "  - name: r{i}\n    vendor: {v}\n    path_prefix: {p}\n    upstream: https://api{i}.example.com/base"
        )
        .unwrap();
    }
    for i in 0..4 {
        let v = VENDORS[i % VENDORS.len()];
        writeln!(
            y,
            "  - name: h{i}\n    vendor: {v}\n    host: tenant{i}.gateway.example.com\n    path_prefix: /api\n    upstream: https://tenant{i}.example.com"
        )
        .unwrap();
    }
    y
}

fn bench_find(c: &mut Criterion) {
    let cfg = parse_config(&config_yaml(), Path::new("bench.yaml")).expect("bench config is valid");
    let table = &cfg.routes;
    assert_eq!(table.len(), 20);
    let host = Some("gw.internal:8080");

    // Sanity: each case finds what it claims to.
    let (r, rest) = table.find(host, "/openim/user/get_users_info?x=1").unwrap();
    assert_eq!(&*r.name, "r1");
    assert_eq!(rest, "/user/get_users_info?x=1");
    let (r, _) = table
        .find(Some("Tenant2.Gateway.Example.com:443"), "/api/v1/things/42")
        .unwrap();
    assert_eq!(&*r.name, "h2");
    let (r, _) = table.find(host, "/partners/globex/api/orders/17").unwrap();
    assert_eq!(&*r.name, "r13");

    // A table without the catch-all `/`, for a real miss.
    let yaml_no_root: String = config_yaml().replace("path_prefix: /\n", "path_prefix: /catch\n");
    let cfg_miss = parse_config(&yaml_no_root, Path::new("bench.yaml")).expect("valid");
    assert!(cfg_miss.routes.find(host, "/nothing/here").is_none());

    let mut g = c.benchmark_group("route_find");
    g.throughput(Throughput::Elements(1));
    g.bench_function("prefix_hit_short", |b| {
        b.iter(|| {
            table.find(
                black_box(host),
                black_box("/openim/user/get_users_info?x=1"),
            )
        })
    });
    g.bench_function("prefix_hit_deep", |b| {
        b.iter(|| table.find(black_box(host), black_box("/partners/globex/api/orders/17")))
    });
    g.bench_function("host_bound_hit", |b| {
        b.iter(|| {
            table.find(
                black_box(Some("Tenant2.Gateway.Example.com:443")),
                black_box("/api/v1/things/42"),
            )
        })
    });
    g.bench_function("catch_all_root", |b| {
        b.iter(|| table.find(black_box(host), black_box("/nothing/here")))
    });
    g.bench_function("miss", |b| {
        b.iter(|| {
            cfg_miss
                .routes
                .find(black_box(host), black_box("/nothing/here"))
        })
    });
    g.bench_function("miss_no_host", |b| {
        b.iter(|| {
            cfg_miss
                .routes
                .find(black_box(None), black_box("/nothing/here"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_find);
criterion_main!(benches);
