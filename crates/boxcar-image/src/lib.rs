//! Building Boxcar images (fleet/build side): from a declarative manifest
//! (`images/boxcar.toml`) to a bootable GPT disk image, the UKI and /usr
//! image of the version, its signed update payload, an SBOM and SHA256SUMS.
//!
//! Nothing is mounted on the build host: the Debian root comes from
//! mmdebstrap in unshare mode, filesystems are made from directories
//! (mkfs.erofs, mkfs.ext4 -d, mkfs.vfat + mtools), the initrd is written by
//! our own cpio writer and the disk is assembled by copying partition images
//! to the offsets of the GPT from `boxcar-slots`. Pure decisions (version
//! scheme, manifest checks, command lines, section addresses, module
//! closure, partition UUIDs) live in small functions with their own tests.

pub mod bootstrap;
pub mod build;
mod cmd;
pub mod cpio;
pub mod customize;
pub mod disk;
mod error;
pub mod esp;
pub mod initrd;
pub mod kmods;
pub mod manifest;
pub mod report;
pub mod rootfs;
pub mod sbom;
pub mod sums;
pub mod uki;
pub mod usrfs;
pub mod version;

pub use build::{build, BinarySource, BuildOptions, Qcow2};
pub use error::ImageError;
pub use manifest::Manifest;
pub use report::BuildReport;
