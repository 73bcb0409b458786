//! Fuzzes the reboot side of update.conf (boxcar-reboot): the layered KEY=value parser and the
//! window syntax must never panic, every error must carry a location, and a parsed window must
//! print back to text that parses to the same window; window arithmetic must not panic either.
#![no_main]
use boxcar_reboot::config::{parse_layers, ConfigError};
use boxcar_reboot::jiff;
use boxcar_reboot::window::Window;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Split into an image layer and an operator layer at the first NUL, if any.
    let (usr, etc) = text.split_once('\0').unwrap_or(("", &text));
    match parse_layers(&[("/usr/share/boxcar/update.conf", usr), ("/etc/boxcar/update.conf", etc)]) {
        Ok(cfg) => {
            for w in &cfg.schedule.windows {
                assert_eq!(Window::parse(&w.to_string()).as_ref(), Ok(w));
            }
            for secs in [0i64, 1_700_000_000, 1_711_846_800, 4_102_444_800] {
                let _ = cfg.schedule.gate(jiff::Timestamp::from_second(secs).unwrap());
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                if let ConfigError::Line { line, .. } = e {
                    assert!(*line >= 1);
                }
            }
        }
    }
    for line in text.lines() {
        if let Ok(w) = Window::parse(line) {
            assert_eq!(Window::parse(&w.to_string()).as_ref(), Ok(&w));
        }
    }
});
