//! The parsers boxcar-provision applies to untrusted input — the target's
//! passwd/group files, the kernel command line, verification hashes, URLs
//! to redact — never panic, and redaction never leaks a data URL payload
//! or a query string.
#![no_main]
use boxcar_provision::{fetch, passwd_db, provider};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for e in passwd_db::parse_passwd(&text) {
        assert!(!e.name.is_empty());
        assert_eq!(passwd_db::find_user(&passwd_db::parse_passwd(&text), &e.name).map(|f| f.name.as_str()), Some(e.name.as_str()));
    }
    for g in passwd_db::parse_group(&text) {
        assert!(!g.name.is_empty());
    }
    if let Some(u) = provider::cmdline_url(&text) {
        assert!(!u.is_empty() && !u.contains(provider::is_kernel_space));
    }
    let _ = fetch::verify::parse(&text);
    let shown = fetch::redact(&text);
    if fetch::is_data_url(&text) {
        assert!(shown.starts_with("data:<") && shown.ends_with(" bytes>"));
    } else if let Some(i) = text.find(['?', '#']) {
        // Nothing after the `?`/`#` survives: the output is at most the
        // (possibly shortened) part before it plus the marker.
        assert!(shown.ends_with("?<redacted>"), "{shown}");
        assert!(shown.len() <= i + "?<redacted>".len(), "{shown}");
    }
});
