//! Every reference example parses into the fields update_engine and Nebraska use, and hostile
//! documents are refused with the matching error.

use boxcar_omaha::*;

fn example(n: u32) -> String {
    let path = format!("{}/tests/examples/example-{n:02}.xml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    // example 06 is flatcar-update's template; fill it the way that tool does.
    text.replace("${VERSION}", "3975.2.0")
        .replace("${SHA1_B64}", "2jmj7l5rSw0yVb/vlWAYkK/YBwk=")
        .replace(
            "${SHA256_HEX}",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .replace("${SIZE}", "1048576")
        .replace(
            "${SHA256_B64_OF_MAIN_PAYLOAD}",
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        )
}

#[test]
fn example_01_update_engine_check() {
    let req = Request::parse(example(1).as_bytes()).unwrap();
    assert_eq!(req.protocol, "3.0");
    assert_eq!(req.version.as_deref(), Some("update_engine-0.4.10"));
    assert_eq!(req.updater_version.as_deref(), Some("update_engine-0.4.10"));
    assert_eq!(req.install_source.as_deref(), Some("scheduler"));
    assert_eq!(req.is_machine.as_deref(), Some("1"));
    let os = req.os.as_ref().unwrap();
    assert_eq!(os.version.as_deref(), Some("Chateau"));
    assert_eq!(os.platform.as_deref(), Some("CoreOS"));
    assert_eq!(os.sp.as_deref(), Some("2512.2.0_x86_64"));
    assert_eq!(os.arch, None);
    assert_eq!(req.apps.len(), 1);
    let app = &req.apps[0];
    assert_eq!(normalize_app_id(&app.app_id), FLATCAR_APP_ID);
    assert_eq!(app.version, "1.2.3");
    assert_eq!(app.track.as_deref(), Some("stable"));
    assert_eq!(app.boot_id.as_deref(), Some("{965fb4c5-ad3e-4eb7-a4c2-ca0c0e31ec84}"));
    assert_eq!(app.oem.as_deref(), Some("ami"));
    assert_eq!(app.oem_version.as_deref(), Some("0.1.1-r1"));
    assert_eq!(app.aleph_version.as_deref(), Some("1688.5.3"));
    assert_eq!(app.machine_id, "INSERTINSTANCEIDHERE");
    assert_eq!(app.lang.as_deref(), Some("en-US"));
    assert_eq!(app.board.as_deref(), Some("amd64-usr"));
    assert_eq!(app.hardware_class.as_deref(), Some(""));
    assert_eq!(app.delta_okay.as_deref(), Some("false"));
    assert_eq!(app.ping.as_ref().unwrap().active.as_deref(), Some("1"));
    assert!(app.update_check.is_some());
    assert_eq!(
        app.events,
        vec![Event {
            event_type: EventType::UpdateComplete,
            event_result: EventResult::Success,
            error_code: None,
            previous_version: None
        }]
    );
}

#[test]
fn example_02_syncer_request_and_error_response() {
    let text = example(2);
    let split = text.find("<response").unwrap();
    let req = Request::parse(text[..split].trim().as_bytes()).unwrap();
    assert_eq!(req.version.as_deref(), Some("CoreOSUpdateEngine-0.1.0.0"));
    assert_eq!(req.os.as_ref().unwrap().arch.as_deref(), Some("x64"));
    let app = &req.apps[0];
    assert_eq!(app.app_id, FLATCAR_APP_ID);
    assert_eq!(app.version, "2191.5.0");
    assert_eq!(app.machine_id, "{eb6a97bc-ed0e-4d86-824c-96c494f08c85}");
    assert!(app.ping.is_none());
    assert!(app.update_check.is_some());
    assert!(app.events.is_empty());

    let resp = Response::parse(&text.as_bytes()[split..]).unwrap();
    assert_eq!(resp.server.as_deref(), Some("nebraska"));
    assert_eq!(resp.daystart_elapsed_seconds, Some(0));
    let app = &resp.apps[0];
    assert_eq!(app.status, AppStatus::Other("error-instanceRegistrationFailed".into()));
    let uc = app.update_check.as_ref().unwrap();
    assert_eq!(uc.status, UpdateStatus::ErrorInternal);
    assert!(uc.urls.is_empty());
    assert!(uc.manifest.is_none());
}

#[test]
fn example_03_update_available_response() {
    let resp = Response::parse(example(3).as_bytes()).unwrap();
    assert_eq!(resp.daystart_elapsed_seconds, Some(49008));
    let app = &resp.apps[0];
    assert_eq!(app.app_id, "{87efface-864d-49a5-9bb3-4b050a7c227a}");
    assert_eq!(app.status, AppStatus::Ok);
    assert_eq!(app.ping_status.as_deref(), Some("ok"));
    let uc = app.update_check.as_ref().unwrap();
    assert_eq!(uc.status, UpdateStatus::Ok);
    assert_eq!(uc.urls, vec!["http://kam:8080/static/".to_string()]);
    let m = uc.manifest.as_ref().unwrap();
    assert_eq!(m.version, "9999.0.0");
    assert_eq!(
        m.packages,
        vec![Package {
            name: "update.gz".into(),
            hash: Some("+LXvjiaPkeYDLHoNKlf9qbJwvnk=".into()),
            hash_sha256: None,
            size: 67546213,
            required: true
        }]
    );
    let a = &m.actions[0];
    assert_eq!(a.event, "postinstall");
    assert_eq!(
        a.sha256.as_deref(),
        Some("0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=")
    );
    assert!(!a.disable_payload_backoff);
    assert!(a.extra.contains(&("ChromeOSVersion".into(), "9999.0.0".into())));
    assert!(a.extra.contains(&("IsDelta".into(), "True".into())));
}

#[test]
fn example_04_chromeos_era_request() {
    let req = Request::parse(example(4).as_bytes()).unwrap();
    assert_eq!(req.install_source.as_deref(), Some("ondemandupdate"));
    let app = &req.apps[0];
    assert_eq!(app.machine_alias.as_deref(), Some("mymachine"));
    assert_eq!(app.from_track.as_deref(), Some("developer-build"));
    assert_eq!(app.track.as_deref(), Some("dev-channel"));
    let ping = app.ping.as_ref().unwrap();
    assert_eq!((ping.a.as_deref(), ping.r.as_deref()), (Some("-1"), Some("-1")));
    assert_eq!(
        app.update_check.as_ref().unwrap().target_version_prefix.as_deref(),
        Some("")
    );
    assert_eq!(app.events[0].event_result, EventResult::SuccessReboot);
    assert_eq!(app.events[0].previous_version.as_deref(), Some(""));
}

#[test]
fn example_05_noupdate_response() {
    let resp = Response::parse(example(5).as_bytes()).unwrap();
    assert_eq!(resp.daystart_elapsed_seconds, Some(100));
    let uc = resp.first_update_check().unwrap();
    assert_eq!(uc.status, UpdateStatus::NoUpdate);
    assert!(uc.manifest.is_none());
}

#[test]
fn example_06_flatcar_response_template() {
    let resp = Response::parse(example(6).as_bytes()).unwrap();
    assert_eq!(resp.server.as_deref(), Some("flatcar-update"));
    let app = &resp.apps[0];
    assert_eq!(app.event_acks, 1);
    let uc = app.update_check.as_ref().unwrap();
    assert_eq!(uc.urls, vec!["http://localhost:9091/".to_string()]);
    let m = uc.manifest.as_ref().unwrap();
    assert_eq!(m.version, "3975.2.0");
    assert_eq!(m.packages.len(), 2);
    assert_eq!(m.packages[0].name, "flatcar_production_update.gz");
    assert!(m.packages[0].required);
    assert_eq!(m.packages[0].size, 1048576);
    assert_eq!(m.packages[1].name, "oem-azure.gz");
    assert_eq!(
        m.packages[1].hash_sha256.as_deref(),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert!(!m.packages[1].required);
    assert_eq!(
        m.actions[0].sha256.as_deref(),
        Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    );
    assert!(m.actions[0].disable_payload_backoff);
}

#[test]
fn every_example_round_trips_through_serialisation() {
    for n in 1..=6 {
        let text = example(n);
        for part in text.split_inclusive("</request>") {
            let part = part.trim();
            if part.starts_with("<request") || part.contains("<request ") {
                let req = Request::parse(part.as_bytes()).unwrap();
                assert_eq!(Request::parse(req.to_xml().as_bytes()).unwrap(), req, "example {n}");
            } else if part.contains("<response") {
                let resp = Response::parse(part.as_bytes()).unwrap();
                assert_eq!(Response::parse(resp.to_xml().as_bytes()).unwrap(), resp, "example {n}");
            }
        }
    }
}

#[test]
fn a_written_update_response_has_what_update_engine_reads() {
    let resp = Response {
        protocol: "3.0".into(),
        server: Some("boxcar".into()),
        daystart_elapsed_seconds: Some(0),
        apps: vec![AppResponse {
            app_id: FLATCAR_APP_ID.into(),
            status: AppStatus::Ok,
            ping_status: Some("ok".into()),
            update_check: Some(UpdateCheckResponse {
                status: UpdateStatus::Ok,
                poll_interval: None,
                urls: vec!["https://example.com/a&b/".into()],
                manifest: Some(Manifest {
                    version: "4000.0.0".into(),
                    packages: vec![Package {
                        name: "flatcar_production_update.gz".into(),
                        hash: Some("sha1".into()),
                        hash_sha256: None,
                        size: 42,
                        required: true,
                    }],
                    actions: vec![Action {
                        event: "postinstall".into(),
                        sha256: Some("c2hhMjU2".into()),
                        ..Action::default()
                    }],
                }),
            }),
            event_acks: 0,
        }],
    };
    let xml = resp.to_xml();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(
        xml.contains("<url codebase=\"https://example.com/a&amp;b/\"></url>"),
        "{xml}"
    );
    assert!(xml.contains("<updatecheck status=\"ok\">"));
    assert!(xml.contains("<manifest version=\"4000.0.0\">"));
    assert!(xml.contains("<action event=\"postinstall\" sha256=\"c2hhMjU2\"></action>"));
    let back = Response::parse(xml.as_bytes()).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn doctype_and_entity_expansion_are_refused() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
<request protocol="3.0"><app appid="&lol2;" version="1" machineid="m"></app></request>"#;
    assert!(matches!(Request::parse(bomb.as_bytes()), Err(ParseError::Doctype)));
    let undeclared = r#"<request protocol="3.0"><app appid="&lol;" version="1" machineid="m"/></request>"#;
    let err = Request::parse(undeclared.as_bytes()).unwrap_err();
    assert!(matches!(err, ParseError::Entity(_)), "{err:?}");
    let external = r#"<request protocol="3.0"><app appid="x" version="1" machineid="m">&xxe;</app></request>"#;
    assert!(matches!(
        Request::parse(external.as_bytes()),
        Err(ParseError::Entity(_))
    ));
    let predefined = r#"<request protocol="3.0"><app appid="a&amp;b&#65;" version="1" machineid="m"/></request>"#;
    assert_eq!(Request::parse(predefined.as_bytes()).unwrap().apps[0].app_id, "a&bA");
}

#[test]
fn oversized_inputs_are_refused() {
    let big = format!("<request protocol=\"3.0\">{}</request>", " ".repeat(70 * 1024));
    assert!(matches!(
        Request::parse(big.as_bytes()),
        Err(ParseError::BodyTooLarge { max: 65536, .. })
    ));
    let attr = format!(
        "<request protocol=\"3.0\"><app appid=\"{}\" version=\"1\"/></request>",
        "a".repeat(5000)
    );
    let err = Request::parse(attr.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, ParseError::AttributeTooLong { element, attribute, len: 5000, .. } if element == "app" && attribute == "appid"),
        "{err:?}"
    );
    let deep = format!("<request>{}{}</request>", "<a>".repeat(40), "</a>".repeat(40));
    assert!(matches!(
        Request::parse(deep.as_bytes()),
        Err(ParseError::TooManyElements { .. })
    ));
    let many = format!("<request>{}</request>", "<event eventtype=\"3\"/>".repeat(600));
    assert!(matches!(
        Request::parse(many.as_bytes()),
        Err(ParseError::TooManyElements { .. })
    ));
}

#[test]
fn malformed_documents_are_refused_with_clear_errors() {
    for (doc, what) in [
        ("<request><app></request>", "mismatched"),
        ("<request", "truncated"),
        ("", "empty"),
        ("<response protocol=\"3.0\"/>", "wrong root"),
        ("<request><app version=\"1\"/></request>", "no appid"),
        (
            "<request><app appid=\"a\"><event eventtype=\"x\"/></app></request>",
            "bad number",
        ),
        ("<request/><request/>", "two roots"),
    ] {
        let err = Request::parse(doc.as_bytes()).expect_err(what);
        assert!(err.to_string().starts_with("parsing Omaha document"), "{what}: {err}");
    }
    assert!(matches!(Request::parse(&[0xff, 0xfe]), Err(ParseError::Utf8)));
}

/// Every request update_engine (and Nebraska's syncer) sends is plain XML: the fast reader takes
/// it, and reads it exactly as the general reader does. Escaped values go to the general reader.
#[test]
fn reference_requests_take_the_fast_reader_with_the_general_readers_result() {
    let limits = Limits::default();
    let mut requests = 0;
    for n in 1..=6 {
        let text = example(n);
        for part in text.split_inclusive("</request>") {
            let part = part.trim();
            if part.contains("<request ") {
                requests += 1;
                let general = differential::parse_general(part.as_bytes(), &limits).unwrap();
                let plain = differential::parse_plain(part.as_bytes(), &limits)
                    .unwrap_or_else(|| panic!("example {n} not read by the fast reader"))
                    .unwrap();
                assert_eq!(plain, general, "example {n}");
            }
        }
    }
    assert!(requests >= 3, "only {requests} requests in the examples");
    let escaped = r#"<request protocol="3.0"><app appid="a&amp;b" machineid="m"/></request>"#;
    assert!(differential::parse_plain(escaped.as_bytes(), &limits).is_none());
    assert_eq!(Request::parse(escaped.as_bytes()).unwrap().apps[0].app_id, "a&b");
}
