//! A/B slots for Boxcar: the GPT partition table (both copies, CRC32s) on
//! image files and block devices, the Chrome OS gptprio attribute bits with
//! cgpt's semantics so Flatcar tooling reads Boxcar slots, the disk layout
//! of design.md, and systemd-boot entries with boot counting on the ESP.
//!
//! Everything that decides (attribute arithmetic, renumbering, slot choice,
//! entry names) is pure and separately tested; the I/O modules only read
//! and write what those functions computed.

pub mod bootent;
mod disk;
mod error;
pub mod gpt;
mod guid;
pub mod layout;
pub mod prio;

pub use disk::{read, write, Health, Mbr, ReadTable};
pub use error::SlotsError;
pub use gpt::{Entry, Gpt};
pub use guid::{BadGuid, Guid};
pub use layout::{Slot, SlotPartitions};
pub use prio::{AddFields, Friends, Prio, Successful};
