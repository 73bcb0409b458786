//! Fuzzes the agent's `Content-Range` parser (a 206 answer's header, from
//! the network): never panics, and whatever it accepts is a satisfied
//! range (start <= end < total) that prints back to an equivalent value.
//! The parser file is pure and dependency-free, so it is included directly
//! instead of pulling the agent (and its TLS stack) into the fuzz build.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/boxcar-agent/src/stage/content_range.rs"]
#[allow(dead_code)]
mod content_range;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(r) = content_range::parse_content_range(s) {
        assert!(r.start <= r.end);
        if let Some(t) = r.total {
            assert!(r.end < t);
        }
        let total = r.total.map_or("*".to_string(), |t| t.to_string());
        let again = format!("bytes {}-{}/{total}", r.start, r.end);
        assert_eq!(content_range::parse_content_range(&again), Some(r));
    }
});
