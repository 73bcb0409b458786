//! Mapping of every staging failure to the update_engine error code the
//! daemon reports in its Omaha error event, with a message naming the step
//! and the file or partition involved.

use crate::state::ErrorCode;
use crate::StageFailure;
use boxcar_payload::PayloadError;

/// update_engine's codes used by the staging engine (names as
/// `boxcar_omaha::error_code_name` prints them).
pub mod code {
    use crate::state::ErrorCode;
    pub const ERROR: ErrorCode = ErrorCode(1);
    pub const DOWNLOAD_TRANSFER: ErrorCode = ErrorCode(9);
    pub const PAYLOAD_HASH_MISMATCH: ErrorCode = ErrorCode(10);
    pub const PAYLOAD_SIZE_MISMATCH: ErrorCode = ErrorCode(11);
    pub const PAYLOAD_VERIFICATION: ErrorCode = ErrorCode(12);
    pub const DOWNLOAD_WRITE: ErrorCode = ErrorCode(14);
    pub const NEW_ROOTFS_VERIFICATION: ErrorCode = ErrorCode(15);
    pub const NEW_KERNEL_VERIFICATION: ErrorCode = ErrorCode(16);
    pub const PUBKEY_VERIFICATION: ErrorCode = ErrorCode(18);
    pub const INVALID_MAGIC: ErrorCode = ErrorCode(21);
    pub const MANIFEST_PARSE: ErrorCode = ErrorCode(23);
    pub const OMAHA_RESPONSE_INVALID: ErrorCode = ErrorCode(34);
    /// update_engine reports an HTTP status as 2000 + status.
    pub fn http(status: u16) -> ErrorCode {
        ErrorCode(2000 + status as u32)
    }
}

/// A failure with `code` and a message.
pub fn fail(code: ErrorCode, message: impl Into<String>) -> StageFailure {
    StageFailure {
        code,
        message: message.into(),
    }
}

/// The code for a payload refusal.
pub fn payload_code(e: &PayloadError) -> ErrorCode {
    use PayloadError as P;
    match e {
        P::BadMagic | P::UnsupportedFormat(_) | P::UnknownSignatureAlgorithm(_) => code::INVALID_MAGIC,
        P::MissingSignature | P::BadSignature | P::Key { .. } => code::PUBKEY_VERIFICATION,
        P::ManifestTooLarge(_) | P::BadManifest(_) => code::MANIFEST_PARSE,
        P::DigestMismatch { .. }
        | P::Oversized { .. }
        | P::Decompress { .. }
        | P::Truncated(_)
        | P::TrailingData
        | P::Downgrade { .. }
        | P::BadCheckpoint(_) => code::PAYLOAD_VERIFICATION,
        P::Stream(_) => code::DOWNLOAD_TRANSFER,
        P::Sink { .. } | P::Read { .. } | P::Write { .. } => code::DOWNLOAD_WRITE,
        P::Verity(_) => code::NEW_ROOTFS_VERIFICATION,
    }
}

/// A payload refusal during `step`, e.g. "verifying the payload from URL".
pub fn payload(step: &str, e: PayloadError) -> StageFailure {
    fail(payload_code(&e), format!("{step}: {e}"))
}

/// A boot-slot or boot-entry operation that failed.
pub fn slots(step: &str, e: boxcar_slots::SlotsError) -> StageFailure {
    fail(code::DOWNLOAD_WRITE, format!("{step}: {e}"))
}

/// A local I/O failure in `step` on `path`.
pub fn io(code: ErrorCode, step: &str, path: &std::path::Path, e: std::io::Error) -> StageFailure {
    fail(code, format!("{step} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_refusals_map_to_update_engine_codes() {
        let cases: [(PayloadError, u32); 7] = [
            (PayloadError::BadSignature, 18),
            (PayloadError::MissingSignature, 18),
            (PayloadError::BadManifest("x".into()), 23),
            (PayloadError::TrailingData, 12),
            (PayloadError::BadMagic, 21),
            (PayloadError::Stream(std::io::ErrorKind::TimedOut.into()), 9),
            (
                PayloadError::Downgrade {
                    offered: "1".into(),
                    current: "2".into(),
                },
                12,
            ),
        ];
        for (e, want) in cases {
            let got = payload_code(&e).0;
            assert_eq!(got, want, "{e}");
            assert!(!boxcar_omaha::error_code_name(got).starts_with("Unknown"));
        }
        assert_eq!(boxcar_omaha::error_code_name(code::http(404).0), "HTTPResponse404");
    }
}
