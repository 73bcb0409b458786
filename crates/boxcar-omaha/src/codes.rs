//! Event types, results and update_engine error codes (ActionExitCode).

/// Omaha event types update_engine sends (plus Nebraska's "installed" extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// 3: the update finished (result 1), the new version booted (result 2), or it failed (result 0).
    UpdateComplete,
    /// 13: payload download is starting.
    DownloadStarted,
    /// 14: payload download finished.
    DownloadFinished,
    /// 800: Nebraska-only "installed, completion prevented"; never sent by update_engine.
    Installed,
    /// Any other number, kept so it can be stored and shown.
    Other(u32),
}

impl EventType {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            EventType::UpdateComplete => 3,
            EventType::DownloadStarted => 13,
            EventType::DownloadFinished => 14,
            EventType::Installed => 800,
            EventType::Other(n) => n,
        }
    }
}

impl From<u32> for EventType {
    fn from(n: u32) -> Self {
        match n {
            3 => EventType::UpdateComplete,
            13 => EventType::DownloadStarted,
            14 => EventType::DownloadFinished,
            800 => EventType::Installed,
            n => EventType::Other(n),
        }
    }
}

/// Omaha event results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventResult {
    /// 0: failure; an `errorcode` says why.
    Error,
    /// 1: success.
    Success,
    /// 2: success after reboot into the new version.
    SuccessReboot,
    /// 9: deferred by policy or backoff (codes 35, 36, 40).
    UpdateDeferred,
    /// Any other number.
    Other(u32),
}

impl EventResult {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            EventResult::Error => 0,
            EventResult::Success => 1,
            EventResult::SuccessReboot => 2,
            EventResult::UpdateDeferred => 9,
            EventResult::Other(n) => n,
        }
    }
}

impl From<u32> for EventResult {
    fn from(n: u32) -> Self {
        match n {
            0 => EventResult::Error,
            1 => EventResult::Success,
            2 => EventResult::SuccessReboot,
            9 => EventResult::UpdateDeferred,
            n => EventResult::Other(n),
        }
    }
}

/// Flag bits update_engine ORs into error codes (dev mode, resumed, test image, non-production server).
pub const ERROR_CODE_FLAGS_MASK: u32 = 0xF000_0000;

/// Decodes an update_engine error code into a readable name, ignoring the flag bits.
///
/// Operators see numbers like `1073741834` in events; this turns them into
/// `PayloadHashMismatch (resumed)` so dashboards and logs can be read without the source.
pub fn error_code_name(code: u32) -> String {
    let base = code & !ERROR_CODE_FLAGS_MASK;
    let name = match base {
        0 => "Success".to_string(),
        1 => "Error".to_string(),
        2 => "OmahaRequestError".to_string(),
        3 => "OmahaResponseHandlerError".to_string(),
        4 => "FilesystemCopierError".to_string(),
        5 => "PostinstallRunnerError".to_string(),
        7 => "InstallDeviceOpenError".to_string(),
        9 => "DownloadTransferError".to_string(),
        10 => "PayloadHashMismatch".to_string(),
        11 => "PayloadSizeMismatch".to_string(),
        12 => "DownloadPayloadVerificationError".to_string(),
        14 => "DownloadWriteError".to_string(),
        15 => "NewRootfsVerificationError".to_string(),
        16 => "NewKernelVerificationError".to_string(),
        17 => "SignedDeltaPayloadExpected".to_string(),
        18 => "DownloadPayloadPubKeyVerification".to_string(),
        21 => "InvalidMetadataMagicString".to_string(),
        23 => "ManifestParseError".to_string(),
        28 => "OperationExecutionError".to_string(),
        30 => "OmahaRequestEmptyResponse".to_string(),
        31 => "OmahaRequestXMLParseError".to_string(),
        34 => "OmahaResponseInvalid".to_string(),
        35 => "OmahaUpdateIgnoredPerPolicy".to_string(),
        36 => "OmahaUpdateDeferredPerPolicy".to_string(),
        37 => "OmahaErrorInHTTPResponse".to_string(),
        40 => "OmahaUpdateDeferredForBackoff".to_string(),
        42 => "PcrPolicyVerificationError".to_string(),
        43 => "PcrPolicyHTTPError".to_string(),
        44 => "RollbackError".to_string(),
        100 => "DownloadIncomplete".to_string(),
        n if (2000..3000).contains(&n) => format!("HTTPResponse{}", n - 2000),
        n => format!("Unknown{n}"),
    };
    let mut flags = Vec::new();
    if code & (1 << 31) != 0 {
        flags.push("dev mode");
    }
    if code & (1 << 30) != 0 {
        flags.push("resumed");
    }
    if code & (1 << 29) != 0 {
        flags.push("test image");
    }
    if code & (1 << 28) != 0 {
        flags.push("non-production server");
    }
    if flags.is_empty() {
        name
    } else {
        format!("{name} ({})", flags.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_decode_with_flags() {
        assert_eq!(error_code_name(44), "RollbackError");
        assert_eq!(error_code_name(2404), "HTTPResponse404");
        assert_eq!(error_code_name((1 << 30) | 10), "PayloadHashMismatch (resumed)");
        assert_eq!(error_code_name(999), "Unknown999");
    }

    #[test]
    fn event_codes_round_trip() {
        for n in [0, 1, 2, 3, 9, 13, 14, 800, 77] {
            assert_eq!(EventType::from(n).code(), n);
            assert_eq!(EventResult::from(n).code(), n);
        }
    }
}
