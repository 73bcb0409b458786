//! The parsers boxcar-sysext applies to untrusted input — extension-release / os-release
//! files from images, sysupdate transfer files, SHA256SUMS from a server, versions from file
//! names — never panic, and keep their invariants.
#![no_main]
use boxcar_sysext::{compat, release::ReleaseFields, sums, transfer};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(f) = ReleaseFields::parse(&text) {
        for (k, _) in f.iter() {
            assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }
        let host = compat::HostRelease {
            id: "boxcar".into(),
            version_id: Some("1".into()),
            sysext_level: None,
        };
        let _ = compat::validate(&host, &f, "x86-64", compat::Scope::System, compat::Checks::Enforce);
    }
    if let Ok(t) = transfer::Transfer::parse(&text, "x86-64") {
        assert!(t.instances_max >= 2);
        for p in t.source_patterns.iter().chain(&t.target_patterns) {
            assert_eq!(p.matches(&p.render("1.2.3")).as_deref(), Some("1.2.3"));
        }
    }
    if let Ok(entries) = sums::parse(&text) {
        let again: String = entries.iter().map(|e| sums::line(&e.sha256, &e.name)).collect();
        assert_eq!(sums::parse(&again).unwrap(), entries);
    }
    let (a, b) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(text.len(), |(i, _)| i),
    );
    assert_eq!(transfer::version_cmp(a, b), transfer::version_cmp(b, a).reverse());
    assert_eq!(transfer::version_cmp(a, a), std::cmp::Ordering::Equal);
});
