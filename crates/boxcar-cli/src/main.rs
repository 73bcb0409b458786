//! `boxcar`: the operator CLI. Thin: every command calls a library crate.

mod butane_cmd;
mod fleet_cmd;
mod image_cmd;
mod payload_cmd;
mod reboot_cmd;
mod sysext_cmd;
mod update_cmd;
mod validate_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Boxcar: a container-optimised Linux, provisioned from Butane/Ignition.
#[derive(Parser)]
#[command(name = "boxcar", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Translate Butane YAML into Ignition JSON (like `butane`).
    Butane(butane_cmd::Args),
    /// Check an Ignition config (like `ignition-validate`).
    Validate(validate_cmd::Args),
    /// Manage a Boxcar update server: apps, channels, packages, groups, policies, instances.
    Fleet(fleet_cmd::Args),
    /// Update payloads: keygen, build, sign, verify, inspect.
    Payload(payload_cmd::Args),
    /// System extensions: build, validate, merge, update (systemd-sysext compatible).
    Sysext(sysext_cmd::Args),
    /// Build disk images, UKIs and update payloads from a manifest.
    Image(image_cmd::Args),
    /// Reboot coordination: strategy, maintenance windows, lock holders, unlock.
    Reboot(reboot_cmd::Args),
    /// The node's update agent (boxcar-updated): status, check, watch, reset, rollback.
    Update(update_cmd::Args),
}

/// Exit codes shared by the commands.
pub mod exit {
    /// The input is valid (warnings may have been printed).
    pub const OK: u8 = 0;
    /// The input is invalid.
    pub const INVALID: u8 = 1;
    /// A file could not be read or written.
    pub const IO: u8 = 3;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Butane(a) => butane_cmd::run(a),
        Command::Validate(a) => validate_cmd::run(a),
        Command::Fleet(a) => fleet_cmd::run(a),
        Command::Payload(a) => payload_cmd::run(a),
        Command::Sysext(a) => sysext_cmd::run(a),
        Command::Reboot(a) => reboot_cmd::run(a),
        Command::Update(a) => update_cmd::run(a),
        Command::Image(a) => image_cmd::run(a),
    };
    ExitCode::from(code)
}
