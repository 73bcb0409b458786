//! The download half of staging: a fresh or resumed transfer, the pump
//! that feeds the verifier and writes the slot, and the checkpoints.

use super::engine::{Target, Transfer};
use super::errors::{self, code, fail, payload};
use super::http::{Body, Served, Want};
use super::journal::{self, Journal, PayloadId, Phase};
use super::sink::{Prefetch, SlotSink};
use super::SlotStager;
use crate::{Offer, StageFailure};
use boxcar_payload::{keys, open_head, SectionStream, VersionPolicy};
use boxcar_slots::bootent;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

const READ_BUF: usize = 1 << 20;

impl SlotStager {
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

    pub(super) fn download(
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
            .map_err(|e| fail(code::DOWNLOAD_WRITE, format!("opening the slot for writing: {e}")))?;
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

    pub(super) fn save_journal(&self, j: &Journal) -> Result<(), StageFailure> {
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
}
