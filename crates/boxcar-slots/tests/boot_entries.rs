//! Boot entries on an ESP directory: install with a counter, what
//! systemd-boot's attempts do to the name, blessing, marking bad, pruning.

use boxcar_slots::bootent::{self, Counting, EntryName};
use std::path::Path;

fn names(esp: &Path) -> Vec<String> {
    bootent::list(esp)
        .unwrap()
        .into_iter()
        .map(|f| f.path.file_name().unwrap().to_str().unwrap().to_string())
        .collect()
}

#[test]
fn install_bless_prune_cycle() {
    let esp = tempfile::tempdir().unwrap();
    let esp = esp.path();
    assert!(bootent::list(esp).unwrap().is_empty());
    // The running version, blessed long ago.
    bootent::install(esp, "4799.0.0", b"uki-old", 0).unwrap();
    // The new version with three tries.
    let p = bootent::install(esp, "4800.1.0", b"uki-new", 3).unwrap();
    assert!(p.ends_with("EFI/Linux/boxcar-4800.1.0+3.efi"), "{p:?}");
    assert_eq!(std::fs::read(&p).unwrap(), b"uki-new");
    assert_eq!(names(esp), ["boxcar-4800.1.0+3.efi", "boxcar-4799.0.0.efi"]);
    // No temporary files left behind.
    let all: Vec<_> = std::fs::read_dir(esp.join("EFI/Linux")).unwrap().collect();
    assert_eq!(all.len(), 2);

    // systemd-boot's first attempt renames +3 → +2-1 (we model it by hand).
    std::fs::rename(p, esp.join("EFI/Linux/boxcar-4800.1.0+2-1.efi")).unwrap();
    let found = bootent::list(esp).unwrap();
    assert_eq!(found[0].name.counting, Counting::Trying { left: 2, done: 1 });

    // boot-complete.target reached: bless.
    let blessed = bootent::bless(esp, "4800.1.0").unwrap();
    assert!(blessed.ends_with("boxcar-4800.1.0.efi"));
    assert_eq!(std::fs::read(&blessed).unwrap(), b"uki-new");
    assert_eq!(names(esp), ["boxcar-4800.1.0.efi", "boxcar-4799.0.0.efi"]);
    // Blessing again is a no-op.
    assert_eq!(bootent::bless(esp, "4800.1.0").unwrap(), blessed);

    // A third version staged; prune keeps booted + staged.
    bootent::install(esp, "4801.1.0", b"uki-next", 3).unwrap();
    let removed = bootent::prune(esp, &["4800.1.0", "4801.1.0"]).unwrap();
    assert_eq!(removed.len(), 1);
    assert!(removed[0].ends_with("boxcar-4799.0.0.efi"));
    assert_eq!(names(esp), ["boxcar-4801.1.0+3.efi", "boxcar-4800.1.0.efi"]);
}

#[test]
fn mark_bad_and_reinstall_replace_the_old_name() {
    let esp = tempfile::tempdir().unwrap();
    let esp = esp.path();
    bootent::install(esp, "5.0.0", b"a", 3).unwrap();
    std::fs::rename(
        esp.join("EFI/Linux/boxcar-5.0.0+3.efi"),
        esp.join("EFI/Linux/boxcar-5.0.0+1-2.efi"),
    )
    .unwrap();
    let bad = bootent::mark_bad(esp, "5.0.0").unwrap();
    assert!(bad.ends_with("boxcar-5.0.0+0-2.efi"));
    assert_eq!(
        EntryName::parse("boxcar-5.0.0+0-2.efi").unwrap().counting,
        Counting::Bad { done: 2 }
    );
    // Re-staging the same version replaces the bad entry.
    bootent::install(esp, "5.0.0", b"b", 3).unwrap();
    assert_eq!(names(esp), ["boxcar-5.0.0+3.efi"]);
    // Unknown version and invalid names are errors, not panics.
    assert!(bootent::bless(esp, "6.0.0").is_err());
    assert!(bootent::install(esp, "1+2", b"x", 3).is_err());
    assert!(bootent::install(esp, "../x", b"x", 3).is_err());
    // Files we do not manage are left alone by prune.
    std::fs::write(esp.join("EFI/Linux/other.efi"), b"x").unwrap();
    bootent::prune(esp, &[]).unwrap();
    assert!(esp.join("EFI/Linux/other.efi").exists());
    assert!(names(esp).is_empty());
}

#[test]
fn staged_install_is_atomic_idempotent_and_removable() {
    let esp = tempfile::tempdir().unwrap();
    let esp = esp.path();
    bootent::install(esp, "1.0", b"old", 0).unwrap();
    // A bad leftover entry of the version being staged is replaced.
    bootent::install(esp, "2.0", b"stale", 0).unwrap();
    bootent::mark_bad(esp, "2.0").unwrap();
    let staged = bootent::staging_path(esp, "2.0");
    std::fs::write(&staged, b"new").unwrap();
    // The staging file is not an entry.
    assert_eq!(names(esp), ["boxcar-2.0+0.efi", "boxcar-1.0.efi"]);
    let p = bootent::install_staged(esp, "2.0", 3).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"new");
    assert_eq!(names(esp), ["boxcar-2.0+3.efi", "boxcar-1.0.efi"]);
    assert!(!staged.exists());
    // Running it again after the rename (a restart) is a no-op.
    assert_eq!(bootent::install_staged(esp, "2.0", 3).unwrap(), p);
    // Nothing staged and no entry: an error naming the staging file.
    let e = bootent::install_staged(esp, "3.0", 3).unwrap_err().to_string();
    assert!(e.contains(".boxcar-3.0.efi.staging"), "{e}");
    std::fs::write(bootent::staging_path(esp, "2.0"), b"x").unwrap();
    assert_eq!(bootent::remove(esp, "2.0").unwrap().len(), 2);
    assert_eq!(names(esp), ["boxcar-1.0.efi"]);
}
