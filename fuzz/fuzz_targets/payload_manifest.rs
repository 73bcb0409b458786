//! Fuzzes what the node parses from an update payload before and after the
//! signature check: the fixed header, the manifest JSON, and (with a fixed
//! test key) the whole streaming verifier. None of it may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = boxcar_payload::Manifest::parse(data) {
        let again = serde_json::to_vec(&m).expect("serialize");
        assert_eq!(boxcar_payload::Manifest::parse(&again).expect("re-parse"), m);
    }
    let _ = boxcar_payload::read_unverified(data);
    let key = boxcar_payload::keys::PrivateKey::from_bytes(&[7u8; 32]).verifying_key();
    let _ = boxcar_payload::verify_stream(data, &key, &boxcar_payload::VersionPolicy::Any);
});
