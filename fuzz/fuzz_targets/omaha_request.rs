//! Fuzzes the Omaha request parser the update server exposes to the Internet: it must never panic,
//! whatever it accepts must survive a write/parse round trip unchanged, and whenever the fast
//! reader for plain XML takes a body, the general reader must read it the same way.
#![no_main]
use boxcar_omaha::{differential, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Some(plain) = differential::parse_plain(data, &limits) {
        let general = differential::parse_general(data, &limits);
        match (&plain, &general) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("fast reader {plain:?}, general reader {general:?}"),
        }
    }
    if let Ok(req) = boxcar_omaha::Request::parse(data) {
        // Escaping may grow the text, so the re-read is unbounded.
        let unbounded = Limits { max_body: usize::MAX, max_attribute_len: usize::MAX, ..Default::default() };
        let again = boxcar_omaha::Request::parse_with(req.to_xml().as_bytes(), &unbounded).expect("re-parsing written request");
        assert_eq!(again, req);
    }
});
