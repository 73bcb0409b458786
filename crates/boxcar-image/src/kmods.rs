//! Kernel modules for the initrd: the requested modules and everything they
//! depend on, from the staging root's `modules.dep`; built-in modules are
//! satisfied by the kernel and skipped.

use std::collections::{BTreeMap, BTreeSet};

/// `-` and `_` are the same in module names (modprobe's rule).
pub fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// Module name of a path in modules.dep (`kernel/fs/erofs/erofs.ko.xz` → `erofs`).
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalise(stem)
}

/// Parsed modules.dep: module name → (its path, the paths it depends on).
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some((path, deps)) = line.split_once(':') else {
            continue;
        };
        let deps = deps.split_whitespace().map(String::from).collect();
        m.insert(module_name(path), (path.to_string(), deps));
    }
    m
}

/// The set of module paths to ship for `wanted`. Names that are neither
/// modules nor built in are returned as errors (listed together).
pub fn closure(
    deps: &BTreeMap<String, (String, Vec<String>)>,
    builtin: &BTreeSet<String>,
    wanted: &[String],
) -> Result<BTreeSet<String>, Vec<String>> {
    let mut out = BTreeSet::new();
    let mut missing = Vec::new();
    for w in wanted {
        let n = normalise(w);
        match deps.get(&n) {
            Some((path, ds)) => {
                out.insert(path.clone());
                out.extend(ds.iter().cloned());
            }
            None if builtin.contains(&n) => {}
            None => missing.push(w.clone()),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// Names in `modules.builtin` (one path per line).
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines().filter(|l| !l.is_empty()).map(module_name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko\n\
kernel/lib/libcrc32c.ko:\n\
kernel/drivers/md/dm-verity.ko.xz: kernel/drivers/md/dm-bufio.ko kernel/lib/reed_solomon/reed_solomon.ko kernel/drivers/md/dm-mod.ko\n";

    #[test]
    fn closure_includes_dependencies_and_skips_builtins() {
        let d = parse_modules_dep(DEP);
        assert_eq!(module_name("kernel/drivers/md/dm-verity.ko.xz"), "dm_verity");
        let builtin = parse_builtin("kernel/drivers/virtio/virtio.ko\n");
        let c = closure(&d, &builtin, &["erofs".into(), "dm-verity".into(), "virtio".into()]).unwrap();
        assert!(c.contains("kernel/lib/libcrc32c.ko"));
        assert!(c.contains("kernel/drivers/md/dm-mod.ko"));
        assert_eq!(c.len(), 6);
        assert_eq!(closure(&d, &builtin, &["nosuch".into()]).unwrap_err(), ["nosuch"]);
    }
}
