//! `stage`: download → verify → write → checkpoint → read back → commit.
//!
//! Order of durable effects (each step survives a crash at any point):
//! 1. passive slot invalidated (P0 T0 S0), entries of other versions than
//!    the running one removed — a half-written slot is never bootable;
//! 2. sections written; at frame boundaries the partitions are fsynced and
//!    then the journal records the position (resume point);
//! 3. the whole stream verified (signature, every digest, whole-file
//!    sha256 from the offer), journal says `downloaded`;
//! 4. read-back: usr against the verity tree and the signed root hash,
//!    the verity area's and the UKI's bytes against their digests;
//! 5. partition GUIDs set from the root hash (slot still P0);
//! 6. COMMIT: the UKI staging file renamed to `boxcar-<v>+3.efi`;
//! 7. gptprio trial (S0 T1, prioritized), pending update written, journal
//!    removed. Steps 4–7 are idempotent: a restart repeats them.

use super::errors::{self, code, fail};
use super::http::Body;
use super::journal::{self, Journal, Loaded, PayloadId, Pending, Phase};
use super::system::{self, Extent};
use super::{ReadBack, SlotStager};
use crate::{Offer, StageFailure, Staged};
use boxcar_payload::{Head, SectionStream};
use boxcar_slots::bootent;
use boxcar_slots::layout::{self, find_slot};
use boxcar_slots::Slot;
use std::cmp::Ordering;
use std::sync::atomic::AtomicBool;

/// What staging works on, resolved once per attempt.
pub(super) struct Target {
    pub running: String,
    pub passive: Slot,
    pub usr: Extent,
    pub verity: Extent,
}

/// A payload body being received, with the verifier positioned at its start.
pub(super) struct Transfer {
    pub head: Head,
    pub stream: SectionStream,
    pub body: Body,
}

impl SlotStager {
    pub(super) fn stage_locked(
        &self,
        offer: &Offer,
        on_progress: &mut dyn FnMut(u64),
        cancel: &AtomicBool,
    ) -> Result<Staged, StageFailure> {
        let running = self.running_version()?;
        if !bootent::valid_version(&offer.version)
            || bootent::compare_versions(&offer.version, &running) != Ordering::Greater
        {
            return Err(fail(
                code::OMAHA_RESPONSE_INVALID,
                format!(
                    "offered version {:?} is not newer than the running {running} (downgrade refused)",
                    offer.version
                ),
            ));
        }
        let gpt = self.read_gpt()?;
        let booted = self.booted_slot(&gpt)?.ok_or_else(|| {
            fail(
                code::ERROR,
                format!(
                    "cannot tell the booted slot: no USR partition on {} has the GUID from usrhash= in {}",
                    self.config.disk.display(),
                    self.config.cmdline.display()
                ),
            )
        })?;
        let passive = booted.other();
        let parts = find_slot(&gpt, passive).map_err(|e| errors::slots("finding the passive slot", e))?;
        let extent = |n| {
            system::extent(&gpt, n).ok_or_else(|| fail(code::DOWNLOAD_WRITE, format!("partition {n} has no extent")))
        };
        let target = Target {
            running,
            passive,
            usr: extent(parts.usr)?,
            verity: extent(parts.verity)?,
        };
        let id = PayloadId {
            url: offer.url.clone(),
            offer_sha256: offer.sha256.as_ref().map(|s| s.to_ascii_lowercase()),
            offer_size: offer.size,
            version: offer.version.clone(),
            slot: passive.usr_label().to_string(),
        };
        let dir = &self.config.state_dir;
        let previous = match journal::load::<Journal>(dir, journal::JOURNAL) {
            Ok(Loaded::Found(j)) if j.payload == id => Some(j),
            Ok(Loaded::Found(j)) => {
                tracing::info!(old = %j.payload.url, "journal belongs to another payload; starting over");
                None
            }
            Ok(Loaded::Invalid(why)) => {
                tracing::warn!(%why, "ignoring unreadable staging journal");
                None
            }
            Ok(Loaded::Missing) => None,
            Err(e) => {
                return Err(errors::io(
                    code::ERROR,
                    "reading",
                    &journal::path(dir, journal::JOURNAL),
                    e,
                ))
            }
        };
        if self.already_staged(offer, &target)? {
            tracing::info!(version = %offer.version, "already staged for the next boot");
            on_progress(offer.size);
            return Ok(Staged {
                version: offer.version.clone(),
                slot: passive.usr_label().to_string(),
            });
        }
        let done = match previous {
            Some(j) if j.phase == Phase::Downloaded => {
                tracing::info!(version = %offer.version, "payload already downloaded; finishing");
                on_progress(offer.size);
                j
            }
            resume => match self.download(offer, &id, &target, resume, on_progress, cancel) {
                Ok(j) => j,
                Err(e) => {
                    if refuses_payload(&e) {
                        // Checkpoints may hold hash states over bad bytes:
                        // never resume from them.
                        let _ = journal::remove(dir, journal::JOURNAL);
                    }
                    return Err(e);
                }
            },
        };
        self.finalize(&target, &done)
    }

    /// Whether `offer` is staged already (pending record, counted entry and
    /// a trial boot set for the passive slot): then there is nothing to do.
    fn already_staged(&self, offer: &Offer, t: &Target) -> Result<bool, StageFailure> {
        let Ok(Loaded::Found(p)) = journal::load::<Pending>(&self.config.state_dir, journal::PENDING) else {
            return Ok(false);
        };
        if p.version != offer.version || p.slot != t.passive.usr_label() {
            return Ok(false);
        }
        let counted = bootent::list(&self.config.esp)
            .map_err(|e| errors::slots("listing boot entries", e))?
            .iter()
            .any(|f| f.name.version == offer.version && matches!(f.name.counting, bootent::Counting::Trying { .. }));
        let prio = layout::slot_prio(&self.read_gpt()?, t.passive)
            .map_err(|e| errors::slots("reading the passive slot", e))?;
        let journal_left = journal::path(&self.config.state_dir, journal::JOURNAL).exists();
        Ok(counted && prio.tries > 0 && prio.successful == boxcar_slots::Successful::No && !journal_left)
    }

    /// Makes the passive slot unbootable and removes every boot entry that
    /// is not the running version's, before anything is written to it.
    pub(super) fn prepare_slot(&self, t: &Target, version: &str) -> Result<(), StageFailure> {
        let mut gpt = self.read_gpt()?;
        layout::invalidate(&mut gpt, t.passive).map_err(|e| errors::slots("invalidating the passive slot", e))?;
        self.write_gpt(&gpt)?;
        self.failpoints.hit("slot-invalidated");
        let esp = &self.config.esp;
        let entries = bootent::list(esp).map_err(|e| errors::slots("listing boot entries", e))?;
        for f in entries.iter().filter(|f| f.name.version != t.running) {
            bootent::remove(esp, &f.name.version).map_err(|e| errors::slots("removing an old boot entry", e))?;
        }
        // Staging files of other versions (an abandoned attempt).
        let dir = esp.join(bootent::UKI_DIR);
        let mine = bootent::staging_path(esp, version);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".boxcar-") && name.ends_with(".efi.staging") && e.path() != mine {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Read-back and commit (steps 4–7), all idempotent.
    pub(super) fn finalize(&self, t: &Target, j: &Journal) -> Result<Staged, StageFailure> {
        let m = &j.manifest;
        let version = &j.payload.version;
        let root = m
            .verity_params
            .root_hash
            .parse::<boxcar_verity::RootHash>()
            .ok()
            .ok_or_else(|| fail(code::MANIFEST_PARSE, "manifest root hash is malformed"))?;
        self.failpoints.hit("before-read-back");
        if self.config.tuning.read_back == ReadBack::Verify {
            if let Err(e) = self.read_back(t, m, &root, version) {
                // The slot content is not what was verified: start over next time.
                let _ = journal::remove(&self.config.state_dir, journal::JOURNAL);
                return Err(e);
            }
        }
        self.failpoints.hit("after-read-back");
        let (usr_guid, verity_guid) = system::slot_guids(&root.0);
        let mut gpt = self.read_gpt()?;
        let parts = find_slot(&gpt, t.passive).map_err(|e| errors::slots("finding the passive slot", e))?;
        for (i, e) in gpt.entries.iter().enumerate() {
            let n = i as u32 + 1;
            if n != parts.usr && n != parts.verity && e.is_used() && (e.guid == usr_guid || e.guid == verity_guid) {
                return Err(fail(
                    code::NEW_ROOTFS_VERIFICATION,
                    format!(
                        "partition {n} ({}) already carries a GUID derived from root hash {}: the payload's /usr equals an installed one",
                        e.name, m.verity_params.root_hash
                    ),
                ));
            }
        }
        gpt.partition_mut(parts.usr)
            .map_err(|e| errors::slots("setting GUIDs", e))?
            .guid = usr_guid;
        gpt.partition_mut(parts.verity)
            .map_err(|e| errors::slots("setting GUIDs", e))?
            .guid = verity_guid;
        self.write_gpt(&gpt)?;
        self.failpoints.hit("before-commit");
        bootent::install_staged(&self.config.esp, version, self.config.tuning.boot_tries)
            .map_err(|e| errors::slots("installing the boot entry", e))?;
        self.failpoints.hit("after-commit");
        let mut gpt = self.read_gpt()?;
        layout::stage_trial(&mut gpt, t.passive, 1).map_err(|e| errors::slots("setting the trial boot", e))?;
        self.write_gpt(&gpt)?;
        self.failpoints.hit("after-trial");
        let dir = &self.config.state_dir;
        let pending = Pending {
            format: journal::FORMAT,
            version: version.clone(),
            slot: t.passive.usr_label().to_string(),
            previous_version: t.running.clone(),
        };
        journal::save(dir, journal::PENDING, &pending)
            .map_err(|e| errors::io(code::ERROR, "writing", &journal::path(dir, journal::PENDING), e))?;
        self.failpoints.hit("pending-written");
        journal::remove(dir, journal::JOURNAL)
            .map_err(|e| errors::io(code::ERROR, "removing", &journal::path(dir, journal::JOURNAL), e))?;
        tracing::info!(version = %version, slot = t.passive.usr_label(), "update staged");
        Ok(Staged {
            version: version.clone(),
            slot: t.passive.usr_label().to_string(),
        })
    }
}

/// Whether a failure means the payload itself is bad (as opposed to the
/// transfer, the disk or a cancel), so its checkpoints must be discarded.
fn refuses_payload(e: &StageFailure) -> bool {
    [
        code::PAYLOAD_HASH_MISMATCH,
        code::PAYLOAD_SIZE_MISMATCH,
        code::PAYLOAD_VERIFICATION,
        code::PUBKEY_VERIFICATION,
        code::INVALID_MAGIC,
        code::MANIFEST_PARSE,
    ]
    .contains(&e.code)
}
