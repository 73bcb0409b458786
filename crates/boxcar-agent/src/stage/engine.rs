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

use super::errors::{self, code, fail, payload};
use super::http::{Body, Served, Want};
use super::journal::{self, Journal, Loaded, PayloadId, Pending, Phase};
use super::sink::{drop_cache, Prefetch, SlotSink};
use super::system::{self, Extent};
use super::{ReadBack, SlotStager};
use crate::{Offer, StageFailure, Staged};
use boxcar_payload::{keys, open_head, Head, Manifest, SectionStream, Sha256State, VersionPolicy};
use boxcar_slots::bootent;
use boxcar_slots::layout::{self, find_slot};
use boxcar_slots::Slot;
use std::cmp::Ordering;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

const READ_BUF: usize = 1 << 20;

/// What staging works on, resolved once per attempt.
pub(super) struct Target {
    pub running: String,
    pub passive: Slot,
    pub usr: Extent,
    pub verity: Extent,
}

/// A payload body being received, with the verifier positioned at its start.
struct Transfer {
    head: Head,
    stream: SectionStream,
    body: Body,
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
    fn prepare_slot(&self, t: &Target, version: &str) -> Result<(), StageFailure> {
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

    /// A fresh transfer from byte 0 (or from `body` when a server answered
    /// a range request with the whole file).
    fn fresh(&self, offer: &Offer, body: Option<Body>, policy: &VersionPolicy) -> Result<Transfer, StageFailure> {
        let mut body = match body {
            Some(b) => b,
            None => self.http.get(&offer.url, Want::Whole, offer.size)?,
        };
        let key = keys::load_public(&self.config.public_key).map_err(|e| payload("loading the trusted key", e))?;
        let head = open_head((&mut body.reader).take(offer.size), &key, policy)
            .map_err(|e| payload(&format!("verifying the payload head from {}", offer.url), e))?;
        if head.manifest.version != offer.version {
            return Err(fail(
                code::PAYLOAD_VERIFICATION,
                format!(
                    "payload from {} installs version {}, the offer said {}",
                    offer.url, head.manifest.version, offer.version
                ),
            ));
        }
        let stream = SectionStream::start(&head).map_err(|e| payload("starting the verifier", e))?;
        Ok(Transfer { head, stream, body })
    }

    /// Resumes from a journaled position: re-fetches and re-verifies the
    /// head, then asks for the rest with a Range request. Falls back to a
    /// fresh transfer whenever the server or the payload does not allow a
    /// correct resume.
    fn reopen(
        &self,
        offer: &Offer,
        j: &Journal,
        position: &boxcar_payload::Position,
        policy: &VersionPolicy,
    ) -> Result<Transfer, StageFailure> {
        let head_want = Want::Range {
            start: 0,
            end: Some(j.head_len.saturating_sub(1)),
        };
        let mut head_body = self.http.get(&offer.url, head_want, offer.size)?;
        if head_body.served == Served::Whole {
            tracing::info!("server ignored Range; restarting the download from byte 0");
            return self.fresh(offer, Some(head_body), policy);
        }
        let key = keys::load_public(&self.config.public_key).map_err(|e| payload("loading the trusted key", e))?;
        let head = open_head(&mut head_body.reader, &key, policy)
            .map_err(|e| payload(&format!("re-verifying the payload head from {}", offer.url), e))?;
        drop(head_body);
        if head.manifest_sha256 != j.manifest_sha256 || head.body_offset() != j.head_len {
            tracing::info!("payload at the URL changed since the checkpoint; restarting");
            return self.fresh(offer, None, policy);
        }
        let stream = match SectionStream::resume(&head, position.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint unusable; restarting");
                return self.fresh(offer, None, policy);
            }
        };
        let offset = stream.offset();
        let body = self.http.get(
            &offer.url,
            Want::Range {
                start: offset,
                end: None,
            },
            offer.size,
        )?;
        if body.served == Served::Whole {
            tracing::info!("server ignored Range; restarting the download from byte 0");
            return self.fresh(offer, Some(body), policy);
        }
        tracing::info!(offset, "resuming download");
        Ok(Transfer { head, stream, body })
    }

    fn download(
        &self,
        offer: &Offer,
        id: &PayloadId,
        t: &Target,
        resume: Option<Journal>,
        on_progress: &mut dyn FnMut(u64),
        cancel: &AtomicBool,
    ) -> Result<Journal, StageFailure> {
        self.prepare_slot(t, &offer.version)?;
        let policy = VersionPolicy::NewerThan(t.running.clone());
        let mut tr = match &resume {
            Some(
                j @ Journal {
                    phase: Phase::Downloading { position },
                    ..
                },
            ) => self.reopen(offer, j, position, &policy)?,
            _ => self.fresh(offer, None, &policy)?,
        };
        let m = tr.head.manifest.clone();
        for (what, need, have, label) in [
            ("usr", m.usr.size, t.usr.len, t.passive.usr_label()),
            ("verity", m.verity.size, t.verity.len, t.passive.verity_label()),
        ] {
            if need > have {
                return Err(fail(
                    code::DOWNLOAD_WRITE,
                    format!(
                        "the payload's {what} image ({need} bytes) does not fit partition {label} ({have} bytes) on {}",
                        self.config.disk.display()
                    ),
                ));
            }
        }
        let staging = bootent::staging_path(&self.config.esp, &offer.version);
        let mut sink = SlotSink::open(&self.config.disk, t.usr, t.verity, &staging)
            .map_err(|e| errors::io(code::DOWNLOAD_WRITE, "opening", &self.config.disk, e))?;
        let mut journal = Journal {
            format: journal::FORMAT,
            payload: id.clone(),
            manifest_sha256: tr.head.manifest_sha256.clone(),
            head_len: tr.head.body_offset(),
            manifest: m.clone(),
            phase: Phase::Downloading {
                position: Box::new(tr.stream.boundary().clone()),
            },
        };
        let mut saved = tr.stream.boundary().clone();
        // Monotonic even when a resume falls back to byte 0.
        let mut reported = 0u64;
        let mut progress = |offset: u64| {
            if offset > reported {
                reported = offset;
                on_progress(offset);
            }
        };
        progress(tr.stream.offset());
        let mut buf = vec![0u8; READ_BUF];
        let url = &offer.url;
        let mut reader = Prefetch::new(std::mem::replace(&mut tr.body.reader, Box::new(std::io::empty())));
        loop {
            if cancel.load(AtomicOrdering::Relaxed) {
                return Err(fail(code::ERROR, format!("download of {url} cancelled")));
            }
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(fail(
                        code::DOWNLOAD_TRANSFER,
                        format!("downloading {url} at byte {}: {e}", tr.stream.offset()),
                    ))
                }
            };
            if n == 0 {
                break;
            }
            if tr.stream.offset() + n as u64 > offer.size {
                return Err(fail(
                    code::PAYLOAD_SIZE_MISMATCH,
                    format!("{url} sends more than the {} bytes the offer announced", offer.size),
                ));
            }
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                // Stop at every frame boundary so each can become a checkpoint.
                let used = tr
                    .stream
                    .feed_to_boundary(rest, &mut sink)
                    .map_err(|e| payload(&format!("verifying the payload from {url}"), e))?;
                rest = &rest[used..];
                self.maybe_checkpoint(&tr, &mut sink, &mut journal, &mut saved)?;
            }
            progress(tr.stream.offset());
        }
        let got = tr.stream.offset();
        if got < offer.size && !tr.stream.is_complete() {
            return Err(fail(
                code::DOWNLOAD_TRANSFER,
                format!("{url}: connection closed after {got} of {} bytes", offer.size),
            ));
        }
        let file_sha = tr
            .stream
            .finish()
            .map_err(|e| payload(&format!("verifying the payload from {url}"), e))?;
        if got != offer.size {
            return Err(fail(
                code::PAYLOAD_SIZE_MISMATCH,
                format!("{url} is {got} bytes, the offer announced {}", offer.size),
            ));
        }
        if let Some(want) = &id.offer_sha256 {
            if *want != file_sha {
                return Err(fail(
                    code::PAYLOAD_HASH_MISMATCH,
                    format!("{url}: sha256 {file_sha}, the offer announced {want}"),
                ));
            }
        }
        sink.sync()
            .and_then(|_| sink.set_uki_len(m.uki.size))
            .and_then(|_| sink.sync())
            .map_err(|e| errors::io(code::DOWNLOAD_WRITE, "syncing", &sink.uki_path, e))?;
        self.failpoints.hit("uki-written");
        journal.phase = Phase::Downloaded;
        self.save_journal(&journal)?;
        tracing::info!(version = %offer.version, bytes = got, "payload downloaded and verified");
        Ok(journal)
    }

    /// Journals the last frame boundary once enough arrived since the
    /// previous checkpoint (or a section ended), after syncing the data.
    fn maybe_checkpoint(
        &self,
        tr: &Transfer,
        sink: &mut SlotSink,
        journal: &mut Journal,
        saved: &mut boxcar_payload::Position,
    ) -> Result<(), StageFailure> {
        let (m, head_len) = (&journal.manifest, journal.head_len);
        let b = tr.stream.boundary();
        if saved.section == 0 && saved.compressed == 0 && tr.stream.offset() > head_len {
            self.failpoints.hit("usr-before-checkpoint");
        }
        let due = b.section != saved.section
            || b.payload_offset(m, head_len) - saved.payload_offset(m, head_len) >= self.config.tuning.checkpoint_every;
        if !due || b == saved || tr.stream.is_complete() {
            return Ok(());
        }
        sink.sync()
            .map_err(|e| errors::io(code::DOWNLOAD_WRITE, "syncing", &self.config.disk, e))?;
        *saved = b.clone();
        journal.phase = Phase::Downloading {
            position: Box::new(b.clone()),
        };
        self.save_journal(journal)?;
        match (b.section, b.compressed) {
            (0, c) if c > 0 => self.failpoints.hit("usr-mid"),
            (1, 0) => self.failpoints.hit("between-sections"),
            (1, _) => self.failpoints.hit("verity-mid"),
            _ => {}
        }
        Ok(())
    }

    fn save_journal(&self, j: &Journal) -> Result<(), StageFailure> {
        let dir = &self.config.state_dir;
        journal::save(dir, journal::JOURNAL, j).map_err(|e| {
            errors::io(
                code::DOWNLOAD_WRITE,
                "writing",
                &journal::path(dir, journal::JOURNAL),
                e,
            )
        })
    }

    /// Read-back and commit (steps 4–7), all idempotent.
    fn finalize(&self, t: &Target, j: &Journal) -> Result<Staged, StageFailure> {
        let m = &j.manifest;
        let version = &j.payload.version;
        self.failpoints.hit("before-read-back");
        if self.config.tuning.read_back == ReadBack::Verify {
            if let Err(e) = self.read_back(t, m, version) {
                // The slot content is not what was verified: start over next time.
                let _ = journal::remove(&self.config.state_dir, journal::JOURNAL);
                return Err(e);
            }
        }
        self.failpoints.hit("after-read-back");
        let root = m
            .verity_params
            .root_hash
            .parse::<boxcar_verity::RootHash>()
            .ok()
            .ok_or_else(|| fail(code::MANIFEST_PARSE, "manifest root hash is malformed"))?;
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

    /// Reads the written slot back from the device (page cache dropped)
    /// and checks it against the verity tree and the signed root hash, the
    /// verity area's and the UKI staging file's bytes against their digests.
    fn read_back(&self, t: &Target, m: &Manifest, version: &str) -> Result<(), StageFailure> {
        let disk_path = &self.config.disk;
        let disk = std::fs::File::open(disk_path)
            .map_err(|e| errors::io(code::NEW_ROOTFS_VERIFICATION, "opening", disk_path, e))?;
        drop_cache(&disk, t.usr.offset, m.usr.size);
        drop_cache(&disk, t.verity.offset, m.verity.size);
        let root = m
            .verity_params
            .root_hash
            .parse::<boxcar_verity::RootHash>()
            .ok()
            .ok_or_else(|| fail(code::MANIFEST_PARSE, "manifest root hash is malformed"))?;
        let region = |e: Extent, len| boxcar_verity::Region {
            path: disk_path,
            offset: e.offset,
            len: Some(len),
        };
        boxcar_verity::verify_regions(
            region(t.usr, m.usr.size),
            region(t.verity, m.verity.size),
            &root,
            boxcar_verity::Parallelism::Auto,
        )
        .map_err(|e| {
            fail(
                code::NEW_ROOTFS_VERIFICATION,
                format!(
                    "read-back of {} / {} on {}: {e}",
                    t.passive.usr_label(),
                    t.passive.verity_label(),
                    disk_path.display()
                ),
            )
        })?;
        let verity_sha = sha256_range(&disk, t.verity.offset, m.verity.size)
            .map_err(|e| errors::io(code::NEW_ROOTFS_VERIFICATION, "reading back", disk_path, e))?;
        if verity_sha != m.verity.sha256 {
            return Err(fail(
                code::NEW_ROOTFS_VERIFICATION,
                format!(
                    "read-back of {}: sha256 {verity_sha}, manifest {}",
                    t.passive.verity_label(),
                    m.verity.sha256
                ),
            ));
        }
        let staging = bootent::staging_path(&self.config.esp, version);
        let uki = match std::fs::File::open(&staging) {
            Ok(f) => Some(f),
            // Already renamed into place by an earlier run: check the entry.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(errors::io(code::NEW_KERNEL_VERIFICATION, "opening", &staging, e)),
        };
        let (uki, uki_path) = match uki {
            Some(f) => (f, staging),
            None => {
                let found = bootent::list(&self.config.esp)
                    .map_err(|e| errors::slots("listing boot entries", e))?
                    .into_iter()
                    .find(|f| f.name.version == version)
                    .ok_or_else(|| {
                        fail(
                            code::NEW_KERNEL_VERIFICATION,
                            format!("neither {} nor an entry for {version} exists", staging.display()),
                        )
                    })?;
                let f = std::fs::File::open(&found.path)
                    .map_err(|e| errors::io(code::NEW_KERNEL_VERIFICATION, "opening", &found.path, e))?;
                (f, found.path)
            }
        };
        let len = uki
            .metadata()
            .map_err(|e| errors::io(code::NEW_KERNEL_VERIFICATION, "reading", &uki_path, e))?
            .len();
        drop_cache(&uki, 0, len);
        let uki_sha = sha256_range(&uki, 0, len)
            .map_err(|e| errors::io(code::NEW_KERNEL_VERIFICATION, "reading back", &uki_path, e))?;
        if len != m.uki.size || uki_sha != m.uki.sha256 {
            return Err(fail(
                code::NEW_KERNEL_VERIFICATION,
                format!(
                    "read-back of {}: {len} bytes sha256 {uki_sha}, manifest {} bytes {}",
                    uki_path.display(),
                    m.uki.size,
                    m.uki.sha256
                ),
            ));
        }
        tracing::info!(slot = t.passive.usr_label(), "read-back verified");
        Ok(())
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

/// sha256 (hex) of `len` bytes of `f` from `offset`.
fn sha256_range(f: &std::fs::File, offset: u64, len: u64) -> std::io::Result<String> {
    let mut h = Sha256State::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(READ_BUF as u64) as usize;
        f.read_exact_at(&mut buf[..n], offset + done)?;
        h.update(&buf[..n]);
        done += n as u64;
    }
    Ok(h.finalize_hex())
}
