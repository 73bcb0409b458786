//! Any bytes given to the Ignition parser give a config or a report, never a panic.
#![no_main]
use boxcar_config::{ignition, Strictness};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ignition::parse(data, Strictness::Lenient) {
        // A 3.4.0 config we accept we can print, and re-read to the same
        // config. (Older specs allow what 3.4 rejects, e.g. links without
        // a target before 3.3, so their upgraded output need not re-validate.)
        if p.source_version != boxcar_config::SpecVersion::LATEST {
            return;
        }
        let json = p.config.to_json(boxcar_config::JsonStyle::Compact);
        let again = ignition::parse(json.as_bytes(), Strictness::Lenient).expect("own output re-parses");
        assert_eq!(again.config, p.config);
    }
});
