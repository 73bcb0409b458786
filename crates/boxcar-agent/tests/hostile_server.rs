//! Hostile Omaha servers: garbage XML, an entity bomb, a huge body, HTTP 500s, a server that
//! never answers, an offer pointing at a huge file, a payload bigger than announced. Each time:
//! a clear error (update_engine's code) reported in an error event, nothing made bootable,
//! the daemon back to IDLE and still answering its API; failed checks back off.

mod common;
mod support;

use common::*;
use std::time::Duration;

const NEVER: Duration = Duration::from_secs(86_400);
const CHECK: &str = "/v1/update/";

/// Asks for a check and waits until the attempt is over; returns the status.
fn failed_check(node: &Node) -> boxcar_agent::daemon::proto::StatusView {
    let sock = node.socket();
    let r = api(&sock, r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["ok"], true, "{r}");
    wait_for("the attempt to fail", || {
        let s = api_status(&sock);
        (s.current_operation == "UPDATE_STATUS_IDLE" && s.last_error.is_some(), s)
    })
}

fn error_event_sent(omaha: &HttpServer, code: u32) -> bool {
    let needle = format!(r#"<event eventtype="3" eventresult="0" errorcode="{code}""#);
    omaha
        .bodies()
        .iter()
        .any(|b| b.contains(&needle) && !b.contains("<updatecheck"))
}

fn hostile(reply: Reply) -> (HttpServer, Node) {
    let omaha = HttpServer::start();
    omaha.route(CHECK, reply);
    let node = Node::new(&format!("{}{CHECK}", omaha.base));
    (omaha, node)
}

/// Runs one hostile answer and checks the common outcome; returns the error.
fn refused(reply: Reply, code: u32) -> (String, HttpServer) {
    let (omaha, node) = hostile(reply);
    let d = node.start(NEVER);
    let s = failed_check(&node);
    let e = s.last_error.clone().unwrap();
    assert_eq!(e.code, code, "{e:?}");
    assert_eq!(e.name, boxcar_omaha::error_code_name(code));
    assert!(!e.message.is_empty());
    assert!(s.new_version.is_empty() && !s.reboot_needed, "{s:?}");
    node.world.assert_only_v1_bootable();
    assert!(!node.path("run/reboot-required").exists());
    // Still serving.
    assert_eq!(api_status(&node.socket()).current_operation, "UPDATE_STATUS_IDLE");
    d.stop();
    (e.message, omaha)
}

#[test]
fn garbage_xml_is_error_31() {
    let (msg, omaha) = refused(Reply::Body(200, b"<<<this is not >xml".to_vec()), 31);
    assert!(msg.starts_with("parsing Omaha document"), "{msg}");
    assert!(error_event_sent(&omaha, 31), "{:?}", omaha.bodies());
}

#[test]
fn entity_bomb_is_refused_before_expansion() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><response protocol="3.0"><app appid="x" status="&lol3;"/></response>"#;
    let (msg, _) = refused(Reply::Body(200, bomb.as_bytes().to_vec()), 31);
    assert!(
        msg.contains("document type declarations (DTD) are not allowed"),
        "{msg}"
    );
}

#[test]
fn huge_body_is_not_read_past_the_limit() {
    let (msg, _) = refused(Reply::Endless, 31);
    assert!(msg.contains("answer larger than 65536 bytes"), "{msg}");
}

#[test]
fn empty_answer_is_error_30() {
    refused(Reply::Body(200, Vec::new()), 30);
}

#[test]
fn stalled_server_times_out() {
    let (msg, _) = refused(Reply::Stall, 2);
    assert!(msg.contains("POST http://127.0.0.1:"), "{msg}");
}

#[test]
fn error_status_in_the_answer_is_error_34() {
    let body = r#"<response protocol="3.0"><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="error-unknownApplication"><updatecheck status="error-internal"></updatecheck></app></response>"#;
    let (msg, omaha) = refused(Reply::Body(200, body.as_bytes().to_vec()), 34);
    assert_eq!(
        msg,
        "server answered updatecheck status error-internal (app status error-unknownApplication)"
    );
    assert!(error_event_sent(&omaha, 34));
}

fn offer(url: &str, size: u64) -> Vec<u8> {
    let (base, name) = url.rsplit_once('/').unwrap();
    format!(
        r#"<response protocol="3.0"><app appid="{{e96281a6-d1af-4bde-9a0a-97b76e56dc57}}" status="ok"><updatecheck status="ok"><urls><url codebase="{base}/"></url></urls><manifest version="2.0.0"><packages><package name="{name}" size="{size}" required="true"></package></packages><actions><action event="postinstall" sha256="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="></action></actions></manifest></updatecheck></app></response>"#
    )
    .into_bytes()
}

#[test]
fn offer_of_a_huge_file_is_refused_before_downloading() {
    let files = support::Server::start(vec![0u8; 1024], support::Mode::Honest);
    let (msg, omaha) = refused(Reply::Body(200, offer(&files.url, 1 << 40)), 11);
    assert!(msg.contains("1099511627776 bytes, more than the 67108864"), "{msg}");
    assert_eq!(
        files.sent.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing downloaded"
    );
    assert!(error_event_sent(&omaha, 11));
    // No download-started event either: the attempt ended at the offer.
    assert!(!omaha.bodies().iter().any(|b| b.contains(r#"eventtype="13""#)));
}

#[test]
fn payload_bigger_than_announced_is_cut_off() {
    // The server announces 64 KiB but the file is 8 MiB of junk.
    let files = support::Server::start(vec![7u8; 8 << 20], support::Mode::Honest);
    let (omaha, node) = hostile(Reply::Body(200, offer(&files.url, 64 * 1024)));
    let d = node.start(NEVER);
    let s = failed_check(&node);
    let e = s.last_error.unwrap();
    assert_ne!(e.code, 0);
    assert!(error_event_sent(&omaha, e.code), "{:?}", omaha.bodies());
    // The download started (13/1) but never finished (no 14/1).
    assert!(omaha
        .bodies()
        .iter()
        .any(|b| b.contains(r#"eventtype="13" eventresult="1""#)));
    assert!(!omaha.bodies().iter().any(|b| b.contains(r#"eventtype="14""#)));
    assert!(
        files.sent.load(std::sync::atomic::Ordering::SeqCst) < 8 << 20,
        "not read to the end"
    );
    node.world.assert_only_v1_bootable();
    d.stop();
}

#[test]
fn http_500_backs_off_exponentially_and_recovers() {
    let (omaha, node) = hostile(Reply::Body(500, b"oops".to_vec()));
    // The harness runs with interval 3600 s and no fuzz; a 4 h cap as update_engine's.
    let mut opts = node.options(NEVER);
    opts.timing.max_backoff = Duration::from_secs(4 * 3600);
    let d = boxcar_agent::daemon::Daemon::start(
        node.config(),
        opts,
        node.stager(),
        Some(node.socket()),
        &boxcar_agent::daemon::dbus::Bus::Off,
    )
    .unwrap();
    let delay = |s: &boxcar_agent::daemon::proto::StatusView| s.next_check_time - s.last_checked_time;
    let s1 = failed_check(&node);
    assert_eq!(s1.last_error.as_ref().unwrap().code, 2500);
    assert!(error_event_sent(&omaha, 2500));
    // 1st failure: 7200 s ± 1800 s; 2nd: 14400 s ± 3600 s (the cap); a good answer: 3600 s.
    let d1 = wait_for("next check scheduled", || {
        let s = api_status(&node.socket());
        (s.next_check_time > s1.last_checked_time, delay(&s))
    });
    assert!((5400 - 2..=9000 + 2).contains(&d1), "{d1}");
    let s2 = failed_check(&node);
    let d2 = wait_for("second backoff", || {
        let s = api_status(&node.socket());
        (s.next_check_time - s2.last_checked_time > 9000, delay(&s))
    });
    assert!((10800 - 2..=18000 + 2).contains(&d2), "{d2}");
    // The server recovers: a good answer resets the interval.
    omaha.route(
        CHECK,
        Reply::Body(
            200,
            br#"<response protocol="3.0"><app appid="x" status="ok"><updatecheck status="noupdate"></updatecheck></app></response>"#.to_vec(),
        ),
    );
    let r = api(&node.socket(), r#"{"v":1,"method":"check"}"#);
    assert_eq!(r["ok"], true, "{r}");
    let d3 = wait_for("regular interval again", || {
        let s = api_status(&node.socket());
        (
            s.current_operation == "UPDATE_STATUS_IDLE" && s.last_error.is_none() && delay(&s) <= 3602,
            delay(&s),
        )
    });
    assert!((3598..=3602).contains(&d3), "{d3}");
    d.stop();
}
