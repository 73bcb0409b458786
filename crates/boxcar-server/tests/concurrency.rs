//! Grants stay exact under concurrency: 64 clients checking in at once never exceed the
//! per-period limit — on one server, and on several replicas sharing one database.

mod common;
use common::*;
use serde_json::json;
use std::sync::{Arc, Barrier};

on_both!(
    sixty_four_concurrent_clients_never_exceed_the_limit,
    replicas_on_one_database_behave_as_one
);

/// Fires `n` simultaneous first checks (distinct machines) at the given servers (round robin) and
/// returns how many were granted.
fn storm(servers: &[&TestServer], n: usize, tag: &str) -> usize {
    let barrier = Arc::new(Barrier::new(n));
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let addr = addrs[i % addrs.len()];
            let body = check(&format!("{tag}-{i}"), "3000.0.0", "stable", "0.0.0.0");
            std::thread::spawn(move || {
                barrier.wait();
                let (st, text) = http(addr, "POST", "/v1/update/", &[], body.as_bytes());
                assert_eq!(st, 200, "{text}");
                text.contains(r#"<updatecheck status="ok">"#)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|granted| *granted)
        .count()
}

fn sixty_four_concurrent_clients_never_exceed_the_limit(b: Backend) {
    // Several limits, each with a fresh period: the count is exactly the limit every time.
    for (round, limit) in [1u32, 5, 17, 63].into_iter().enumerate() {
        let db = TestDb::new(b);
        let s = TestServer::start(&db);
        s.policy(
            "stable",
            json!({"safe_mode": "off", "max_updates_per_period": limit, "period_minutes": 60,
                   "halt": {"threshold_percent": 0, "min_failures": 1}}),
        );
        s.publish("3100.0.0", "stable");
        let granted = storm(&[&s], 64, &format!("r{round}"));
        assert_eq!(granted, limit as usize, "limit {limit}");
        let (_, g) = s.api("GET", "/apps/flatcar/groups/stable", None);
        assert_eq!(g["progress"]["granted"], limit, "limit {limit}");
        assert_eq!(g["progress"]["on_hold"], 64 - limit, "limit {limit}");
    }
}

fn replicas_on_one_database_behave_as_one(b: Backend) {
    let db = TestDb::new(b);
    let a = TestServer::start(&db);
    let c = TestServer::start(&db);
    let d = TestServer::start(&db);
    a.policy(
        "stable",
        json!({"safe_mode": "off", "max_updates_per_period": 10, "period_minutes": 60,
               "halt": {"threshold_percent": 0, "min_failures": 1}}),
    );
    a.publish("3100.0.0", "stable");
    // The other replicas pick the new package up on their periodic refresh.
    c.refresh();
    d.refresh();
    assert_eq!(storm(&[&a, &c, &d], 64, "rep"), 10);
    // A pause on one replica holds on the others.
    assert_eq!(c.api("POST", "/apps/flatcar/groups/stable/pause", None).0, 200);
    a.advance(3 * 3600);
    c.advance(3 * 3600);
    d.advance(3 * 3600);
    assert_eq!(storm(&[&a, &d], 16, "paused"), 0);
    // Tokens and instances are shared too.
    assert_eq!(
        d.api_as(&a.admin.clone(), "GET", "/instances?limit=1000", None)
            .1
            .as_array()
            .unwrap()
            .len(),
        80
    );
}
