//! Logic of the Boxcar update agent (`boxcar-updated`):
//! update_engine's state machine with guarded transitions, and what to
//! report after a reboot. Pure: every transition returns the effects the
//! daemon must carry out (Omaha events, D-Bus signals, reboot flag), so the
//! daemon stays a thin executor and the rules are tested here.
//!
//! [`stage`] is the staging engine behind the [`Stager`] trait: download,
//! verify and write the passive slot, boot entries, blessing, rollback.

mod boot;
pub mod stage;
pub mod stager;
mod state;

pub use boot::{after_boot, BootReport, PendingUpdate};
pub use stage::{SlotStager, StageConfig};
pub use stager::{BootStatus, Offer, StageFailure, Staged, Stager};
pub use state::{Effect, ErrorCode, Event, Machine, Refused, State, Status};
