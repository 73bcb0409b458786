//! The last-seen resolution: repeated heartbeats within it write nothing, changes are written at
//! once, after it "last seen" moves; a late flush from another replica never makes a row older.
//! On SQLite and on PostgreSQL, through the real HTTP server.

mod common;
use common::*;

on_both!(
    a_repeat_within_the_resolution_writes_nothing,
    changes_and_check_ins_are_written_at_once,
    zero_resolution_writes_every_heartbeat,
    a_late_flush_from_another_replica_never_makes_the_row_older,
    odd_ids_and_missing_groups_are_written_by_the_batched_touch,
);

/// Writes the queue and returns how many heartbeats were in it.
fn flush(s: &TestServer) -> usize {
    s.fleet.flush_heartbeats().unwrap()
}

fn skipped(s: &TestServer) -> u64 {
    counter(s, "boxcar_heartbeats_skipped_total")
}

fn counter(s: &TestServer, name: &str) -> u64 {
    let (st, body) = http(s.addr, "GET", "/metrics", &[], b"");
    assert_eq!(st, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .parse()
        .unwrap()
}

fn a_repeat_within_the_resolution_writes_nothing(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    // Default resolution (60 s). No package: every check is a heartbeat.
    assert_eq!(
        status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    assert_eq!(flush(&s), 1);
    assert_eq!(s.instance("m1")["last_check"], T0);

    s.advance(30);
    assert_eq!(
        status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    s.advance(29);
    assert_eq!(
        status_of(s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"))),
        "noupdate"
    );
    assert_eq!(flush(&s), 0, "repeats within the resolution are not queued");
    assert_eq!(s.instance("m1")["last_check"], T0, "the row did not change");
    assert_eq!(skipped(&s), 2);

    // 60 s after the written one: last seen moves.
    s.advance(1);
    s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"));
    assert_eq!(flush(&s), 1);
    assert_eq!(s.instance("m1")["last_check"], T0 + 60);
}

fn changes_and_check_ins_are_written_at_once(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"));
    assert_eq!(flush(&s), 1);

    // A new version: written with the next flush, although the resolution has not passed.
    s.advance(5);
    s.omaha(&check("m1", "3001.0.0", "stable", "0.0.0.0"));
    assert_eq!(flush(&s), 1);
    let i = s.instance("m1");
    assert_eq!(
        (i["version"].as_str(), i["last_check"].as_i64()),
        (Some("3001.0.0"), Some(T0 + 5))
    );

    // A new address (behind a proxy): written too.
    s.advance(1);
    let body = check("m1", "3001.0.0", "stable", "0.0.0.0");
    let (st, _) = http(
        s.addr,
        "POST",
        "/v1/update/",
        &[("Content-Type", "text/xml"), ("X-Forwarded-For", "192.0.2.7")],
        body.as_bytes(),
    );
    assert_eq!(st, 200);
    assert_eq!(flush(&s), 1);
    let i = s.instance("m1");
    assert_eq!(
        (i["ip"].as_str(), i["last_check"].as_i64()),
        (Some("192.0.2.7"), Some(T0 + 6))
    );

    // A status change goes through the store at once (here a grant), and the heartbeat after it
    // (a ping without update check) is written as well.
    s.publish("3100.0.0", "stable");
    s.policy("stable", open_policy(10));
    s.advance(1);
    assert_eq!(status_of(s.omaha(&check("m1", "3001.0.0", "stable", "0.0.0.0"))), "ok");
    assert_eq!(flush(&s), 0, "the grant was written by its check-in, not queued");
    let i = s.instance("m1");
    assert_eq!(
        (i["status"].as_str(), i["last_check"].as_i64()),
        (Some("granted"), Some(T0 + 7)),
        "{i}"
    );
    s.advance(1);
    let (st, _) = s.omaha(&ping("m1", "3001.0.0", "stable"));
    assert_eq!(st, 200);
    assert_eq!(flush(&s), 1, "after a check-in the next heartbeat is written");
    let i = s.instance("m1");
    assert_eq!(
        (i["ip"].as_str(), i["last_check"].as_i64()),
        (Some("127.0.0.1"), Some(T0 + 8))
    );
    assert_eq!(i["status"], "granted", "the heartbeat kept the status");
}

fn zero_resolution_writes_every_heartbeat(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.fleet.set_last_seen_resolution(std::time::Duration::ZERO);
    for k in 0..3 {
        s.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"));
        assert_eq!(flush(&s), 1);
        assert_eq!(s.instance("m1")["last_check"], T0 + k);
        s.advance(1);
    }
    assert_eq!(skipped(&s), 0);
}

fn a_late_flush_from_another_replica_never_makes_the_row_older(b: Backend) {
    let db = TestDb::new(b);
    let one = TestServer::start(&db);
    let two = TestServer::start(&db);
    // Replica one queues the instance on 3000 at T0; before it flushes, the instance's next check
    // (on 3001, ten seconds later) lands on replica two, which flushes first.
    one.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"));
    two.advance(10);
    two.omaha(&check("m1", "3001.0.0", "stable", "0.0.0.0"));
    assert_eq!(flush(&two), 1);
    assert_eq!(flush(&one), 1);
    let i = one.instance("m1");
    assert_eq!(
        (i["version"].as_str(), i["last_check"].as_i64()),
        (Some("3001.0.0"), Some(T0 + 10)),
        "the late heartbeat was not applied over the newer row"
    );
    // The row keeps the newest state while replica one skips its repeats.
    one.advance(20);
    one.omaha(&check("m1", "3000.0.0", "stable", "0.0.0.0"));
    assert_eq!(flush(&one), 0);
    assert_eq!(two.instance("m1")["version"], "3001.0.0");
}

/// The batched last-seen statement carries every field of the heartbeat (on PostgreSQL as one
/// JSON document): ids with quotes, backslashes and non-ASCII characters, and an instance whose
/// track names no group (NULL group), come through it unchanged and their last seen moves.
fn odd_ids_and_missing_groups_are_written_by_the_batched_touch(b: Backend) {
    let db = TestDb::new(b);
    let s = TestServer::start(&db);
    s.fleet.set_last_seen_resolution(std::time::Duration::ZERO);
    // (as written in XML, as stored, track)
    let ids = [
        ("q&quot;uote", "q\"uote", "stable"),
        ("back\\slash\\n", "back\\slash\\n", "stable"),
        ("ünï-😀", "ünï-😀", "stable"),
        ("no-group", "no-group", "no-such-track"),
    ];
    for k in 0..2i64 {
        for (xml, _, track) in ids {
            assert_eq!(s.omaha(&check(xml, "3000.0.0", track, "0.0.0.0")).0, 200);
        }
        assert_eq!(flush(&s), ids.len());
        // First round: new rows (full upsert); second: the batched statement moved every one.
        let (touched, upserted) = (ids.len() as u64 * k as u64, ids.len() as u64);
        assert_eq!(counter(&s, "boxcar_heartbeats_touched_total"), touched);
        assert_eq!(counter(&s, "boxcar_heartbeats_upserted_total"), upserted);
        for (_, stored, track) in ids {
            let i = s.fleet.store.get_instance(FLATCAR, stored).unwrap();
            assert_eq!((i.last_check, i.track.as_str()), (T0 + k, track), "{stored}");
            assert_eq!(i.group_id.is_none(), track != "stable", "{stored}");
        }
        s.advance(1);
    }
}
