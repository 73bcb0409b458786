//! How a QEMU run ended, decoded from its exit status.
//!
//! With `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, a guest write of
//! byte `v` to port 0xf4 makes QEMU exit with `(v << 1) | 1`. Convention:
//! v = 0 → status 1 = pass, v ≥ 1 → status 2v+1 = fail with code v. A plain
//! power-off exits 0 and carries no verdict.

/// The outcome of a guest run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The guest wrote 0 to isa-debug-exit.
    Pass,
    /// The guest wrote `v` ≥ 1 to isa-debug-exit.
    Fail(u8),
    /// QEMU exited 0: guest power-off (or QMP quit), no verdict.
    NoVerdict,
    /// QEMU itself failed (bad option, missing file): exit 1 with a
    /// `qemu-system-…:` message on stderr, which is kept here.
    QemuError(String),
    /// Killed by a signal or an even, non-zero status.
    Abnormal(String),
}

/// Decodes QEMU's exit code (`None` = killed by a signal). `stderr` tells a
/// QEMU start-up error (also status 1) from a guest pass.
///
/// Worked examples: 1 → Pass; 3 → Fail(1); 11 → Fail(5); 0 → NoVerdict.
pub fn decode(code: Option<i32>, stderr: &str) -> Exit {
    match code {
        None => Exit::Abnormal("killed by a signal".into()),
        Some(0) => Exit::NoVerdict,
        Some(1) if stderr.contains("qemu-system") => Exit::QemuError(stderr.trim().to_string()),
        Some(c) if c & 1 == 1 && (1..=511).contains(&c) => match (c >> 1) as u8 {
            0 => Exit::Pass,
            v => Exit::Fail(v),
        },
        Some(c) => Exit::Abnormal(format!("exit status {c}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples() {
        assert_eq!(decode(Some(1), ""), Exit::Pass);
        assert_eq!(decode(Some(3), ""), Exit::Fail(1));
        assert_eq!(decode(Some(11), ""), Exit::Fail(5));
        assert_eq!(decode(Some(0), ""), Exit::NoVerdict);
        assert_eq!(decode(Some(2), ""), Exit::Abnormal("exit status 2".into()));
        assert!(matches!(decode(None, ""), Exit::Abnormal(_)));
        assert!(matches!(
            decode(Some(1), "qemu-system-x86_64: -drive file=x: No such file"),
            Exit::QemuError(m) if m.contains("No such file")
        ));
    }
}
