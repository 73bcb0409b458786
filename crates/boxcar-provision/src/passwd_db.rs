//! Reading the target's `/etc/passwd` and `/etc/group`.
//!
//! Ignition resolves owner names with `getpwnam` chrooted into the target;
//! we read the same files directly (no chroot, no NSS modules of the host),
//! which gives the same answers for the `files` database and needs neither
//! root nor a fork per lookup.

/// One `/etc/passwd` entry (the fields provisioning needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
}

/// Parse `/etc/passwd` text. Malformed lines (too few fields, non-numeric
/// ids, NIS `+`/`-` entries, comments) are skipped, as glibc does.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() || f[0].starts_with(['+', '-', '#']) {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// Parse `/etc/group` text, skipping malformed lines like glibc.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || f[0].is_empty() || f[0].starts_with(['+', '-', '#']) {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
            })
        })
        .collect()
}

/// The first passwd entry named `name` (glibc returns the first match).
pub fn find_user<'a>(db: &'a [PasswdEntry], name: &str) -> Option<&'a PasswdEntry> {
    db.iter().find(|e| e.name == name)
}

/// The first group entry named `name`.
pub fn find_group<'a>(db: &'a [GroupEntry], name: &str) -> Option<&'a GroupEntry> {
    db.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_skips_malformed() {
        let p = parse_passwd("root:x:0:0:root:/root:/bin/bash\n+nis\nbad:x:a:0::/:/bin/sh\ncore:x:500:500:Core:/home/core:/bin/bash\nshort:x:1\n");
        assert_eq!(p.len(), 2);
        assert_eq!(find_user(&p, "core").unwrap().home, "/home/core");
        assert_eq!(find_user(&p, "core").unwrap().uid, 500);
        assert!(find_user(&p, "bad").is_none());
        let g = parse_group("root:x:0:\nwheel:x:10:core,other\n#c:x:1:\n");
        assert_eq!(find_group(&g, "wheel").unwrap().gid, 10);
        assert_eq!(g.len(), 2);
    }
}
