//! Logic of the Boxcar update agent (`boxcar-updated`, not written yet):
//! update_engine's state machine with guarded transitions, and what to
//! report after a reboot. Pure: every transition returns the effects the
//! daemon must carry out (Omaha events, D-Bus signals, reboot flag), so the
//! daemon stays a thin executor and the rules are tested here.

mod boot;
pub mod stager;
mod state;

pub use boot::{after_boot, BootReport, PendingUpdate};
pub use stager::{BootStatus, Offer, StageFailure, Stager, Staged};
pub use state::{Effect, ErrorCode, Event, Machine, Refused, State, Status};
