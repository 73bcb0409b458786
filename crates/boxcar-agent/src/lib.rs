//! The Boxcar update agent: the pure logic (state machine, post-boot outcome) and the
//! `boxcar-updated` daemon around it ([`daemon`]). The logic is
//! update_engine's state machine with guarded transitions, and what to
//! report after a reboot. Pure: every transition returns the effects the
//! daemon must carry out (Omaha events, D-Bus signals, reboot flag), so the
//! daemon stays a thin executor and the rules are tested here.

mod boot;
pub mod daemon;
pub mod stager;
mod state;

pub use boot::{after_boot, BootReport, PendingUpdate};
pub use stager::{BootStatus, Offer, StageFailure, Staged, Stager};
pub use state::{Effect, ErrorCode, Event, Machine, Refused, State, Status};
