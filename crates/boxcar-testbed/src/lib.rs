//! A kola-like QEMU test bed for Boxcar's scenario tests.
//!
//! Tests build what the guest boots (a busybox initramfs with
//! [`Initramfs`], a UKI and an ESP with [`efi`], or a Boxcar disk image),
//! describe the machine with [`VmBuilder`] and drive it through a [`Vm`]:
//! wait for console markers, fetch from forwarded ports, read a verdict
//! from isa-debug-exit, power off, restart with the same EFI vars. QEMU
//! runs under KVM where `/dev/kvm` exists and TCG otherwise. See
//! docs/testbed.md for how to write a scenario and what boots cost here.

pub mod accel;
mod builder;
pub mod cargo;
pub mod config;
pub mod cpio;
pub mod efi;
mod error;
pub mod exit;
pub mod image;
pub mod initramfs;
pub mod kernel;
pub mod net;
pub mod paths;
pub mod qmp;
pub mod serial;
pub mod tool;
mod vm;

pub use accel::Accel;
pub use builder::VmBuilder;
pub use config::{Boot, Disk, DiskFormat, DiskMode, IgnitionKey, Machine, OnReboot, Ovmf};
pub use error::{Result, TestbedError};
pub use exit::Exit;
pub use image::{BuiltImage, ImageSpec};
pub use initramfs::Initramfs;
pub use kernel::HostKernel;
pub use vm::Vm;

/// Prefix of console markers printed by test guests (see
/// [`initramfs::PRELUDE`]'s `mark`).
pub const MARK: &str = "BOXCAR_MARK";
