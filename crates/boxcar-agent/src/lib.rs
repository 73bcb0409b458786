//! The Boxcar update agent.
//!
//! * The pure logic: update_engine's state machine with guarded transitions, and what to
//!   report after a reboot. Every transition returns the effects the daemon must carry out
//!   (Omaha events, D-Bus signals, reboot flag), so the rules are tested without I/O.
//! * [`stage`] is the staging engine behind the [`Stager`] trait: download, verify and write
//!   the passive slot, boot entries, blessing, rollback.
//! * [`daemon`] is `boxcar-updated`: the thin executor around both (Omaha client, timers,
//!   local API, D-Bus `com.coreos.update1`).

mod boot;
pub mod daemon;
pub mod stage;
pub mod stager;
mod state;

pub use boot::{after_boot, BootReport, PendingUpdate};
pub use stage::{SlotStager, StageConfig};
pub use stager::{BootHealth, BootStatus, Offer, StageFailure, Staged, Stager};
pub use state::{Effect, ErrorCode, Event, Machine, Refused, State, Status};
