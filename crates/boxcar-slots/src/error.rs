use std::path::PathBuf;

/// Why a slot, table or boot-entry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SlotsError {
    #[error("reading partition table from {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing partition table to {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("GPT header at LBA {lba}: {why}")]
    BadHeader { lba: u64, why: String },
    #[error("no valid GPT on {path}: primary: {primary}; backup: {backup}")]
    NoValidTable {
        path: PathBuf,
        primary: String,
        backup: String,
    },
    #[error("disk of {0} sectors is too small for a GPT")]
    DiskTooSmall(u64),
    #[error("{path} is now {disk} sectors but the table was read for {table}")]
    SizeChanged { path: PathBuf, table: u64, disk: u64 },
    #[error("partition name {0:?} is longer than 36 UTF-16 units")]
    NameTooLong(String),
    #[error("partition {0} does not exist")]
    NoSuchPartition(u32),
    #[error("gptprio field {field} value {value} is out of range 0..={max}")]
    PrioOutOfRange { field: &'static str, value: u8, max: u8 },
    #[error("partition {0} is not a slot partition of the expected type")]
    NotASlot(u32),
    #[error("disk layout: {0}")]
    Layout(String),
    #[error("boot entry {op} {path}: {source}")]
    BootEntry {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("boot entry name {0:?} is not a valid entry name")]
    BadEntryName(String),
}
