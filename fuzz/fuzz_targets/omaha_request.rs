//! Fuzzes the Omaha request parser the update server exposes to the Internet: it must never panic,
//! and whatever it accepts must survive a write/parse round trip unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = boxcar_omaha::Request::parse(data) {
        // Escaping may grow the text, so the re-read is unbounded.
        let unbounded = boxcar_omaha::Limits { max_body: usize::MAX, max_attribute_len: usize::MAX, ..Default::default() };
        let again = boxcar_omaha::Request::parse_with(req.to_xml().as_bytes(), &unbounded).expect("re-parsing written request");
        assert_eq!(again, req);
    }
});
