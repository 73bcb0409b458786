//! How the streaming request reader picks what it keeps and which error it reports: only the
//! elements a request has, at their place in the document; malformed XML before any semantic
//! error; the first semantic error in document order.

use boxcar_omaha::{ParseError, Request};

const APP: &str = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}";

#[test]
fn only_elements_at_their_place_are_read() {
    let xml = format!(
        r#"<request protocol="3.0">
            <os platform="CoreOS" sp="first"/><os sp="second"/>
            <extra><app appid="nested" machineid="x"/></extra>
            <app appid="{APP}" machineid="m1" version="1.0.0">
                <ping active="1"/><ping active="0"/>
                <updatecheck targetversionprefix="a"/><updatecheck targetversionprefix="b"/>
                <event eventtype="13" eventresult="1"/>
                <wrapper><event eventtype="3" eventresult="2"/></wrapper>
                <event eventtype="14" eventresult="1"/>
            </app>
            <app appid="second-app" machineid="m2"/>
        </request>"#
    );
    let r = Request::parse(xml.as_bytes()).unwrap();
    assert_eq!(r.os.as_ref().and_then(|o| o.sp.as_deref()), Some("first"));
    assert_eq!(r.apps.len(), 2, "the nested <app> is not a request app");
    let a = &r.apps[0];
    assert_eq!(a.ping.as_ref().and_then(|p| p.active.as_deref()), Some("1"));
    assert_eq!(
        a.update_check.as_ref().and_then(|u| u.target_version_prefix.as_deref()),
        Some("a")
    );
    let codes: Vec<u32> = a.events.iter().map(|e| e.event_type.code()).collect();
    assert_eq!(codes, vec![13, 14], "events inside other elements are not the app's");
    assert!(r.apps[1].ping.is_none() && r.apps[1].events.is_empty());
    assert_eq!(r.apps[1].machine_id, "m2");
}

#[test]
fn malformed_xml_is_reported_before_semantic_errors() {
    // A missing appid, then a broken document: the XML error wins.
    let err = Request::parse(br#"<request protocol="3.0"><app machineid="m"></app><app></request>"#).unwrap_err();
    assert!(matches!(err, ParseError::Xml { .. }), "{err}");
    // A wrong root, then an unclosed element.
    let err = Request::parse(br#"<response><app appid="x">"#).unwrap_err();
    assert!(err.to_string().contains("unclosed element <app>"), "{err}");
    // Well-formed with a wrong root: named.
    let err = Request::parse(br#"<response><app/></response>"#).unwrap_err();
    assert!(
        err.to_string().contains("expected root <request>, found <response>"),
        "{err}"
    );
}

#[test]
fn the_first_semantic_error_in_document_order_is_reported() {
    let xml = format!(
        r#"<request protocol="3.0">
            <app appid="{APP}" machineid="m1"><event eventtype="x3" eventresult="1"/></app>
            <app machineid="m2"/>
        </request>"#
    );
    let err = Request::parse(xml.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::InvalidNumber {
                attribute: "eventtype",
                ..
            }
        ),
        "{err}"
    );
    let xml = format!(
        r#"<request protocol="3.0"><app machineid="m2"/>
            <app appid="{APP}" machineid="m1"><event eventresult="1"/></app></request>"#
    );
    let err = Request::parse(xml.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::MissingAttribute {
                element: "app",
                attribute: "appid"
            }
        ),
        "{err}"
    );
}

#[test]
fn duplicate_attributes_and_entities_in_skipped_elements_are_still_refused() {
    let err = Request::parse(br#"<request protocol="3.0"><extra a="1" a="2"/></request>"#).unwrap_err();
    assert!(matches!(err, ParseError::Xml { .. }), "{err}");
    let err = Request::parse(br#"<request protocol="3.0"><extra a="&foo;"/></request>"#).unwrap_err();
    assert!(matches!(err, ParseError::Entity(_)), "{err}");
    let long = "v".repeat(3000);
    let err =
        Request::parse(format!(r#"<request protocol="3.0"><extra a="{long}"/></request>"#).as_bytes()).unwrap_err();
    assert!(matches!(err, ParseError::AttributeTooLong { .. }), "{err}");
}
