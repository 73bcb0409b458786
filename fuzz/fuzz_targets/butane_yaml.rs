//! Any bytes given to the Butane translator give a config or a report, never a panic.
#![no_main]
use boxcar_config::butane::{self, FilesDir};
use boxcar_config::Strictness;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let opts = butane::Options {
        files_dir: FilesDir::new(None).unwrap(),
        strictness: Strictness::Lenient,
        source_path: None,
    };
    if let Ok(t) = butane::translate(data, "fuzz.bu", &opts) {
        let _ = t.config.to_json(boxcar_config::JsonStyle::Compact);
    }
});
