//! The engine's other operations (unstage, boot status, blessing,
//! rollback) and the small readers they share with staging.

use super::errors::{self, code, fail};
use super::journal::{self, Loaded, Pending};
use super::system;
use super::SlotStager;
use crate::{BootHealth, BootStatus, PendingUpdate, StageFailure};
use boxcar_slots::bootent::{self, Counting};
use boxcar_slots::layout;
use boxcar_slots::{Gpt, Mbr, Slot, Successful};
use std::cmp::Ordering;

impl SlotStager {
    pub(super) fn read_gpt(&self) -> Result<Gpt, StageFailure> {
        boxcar_slots::read(&self.config.disk)
            .map(|t| t.gpt)
            .map_err(|e| errors::slots("reading the partition table", e))
    }

    pub(super) fn write_gpt(&self, gpt: &Gpt) -> Result<(), StageFailure> {
        boxcar_slots::write(&self.config.disk, gpt, Mbr::Keep)
            .map_err(|e| errors::slots("writing the partition table", e))
    }

    /// `VERSION_ID` of the running system.
    pub(super) fn running_version(&self) -> Result<String, StageFailure> {
        let p = &self.config.os_release;
        let text = std::fs::read_to_string(p).map_err(|e| errors::io(code::ERROR, "reading", p, e))?;
        system::version_id(&text).ok_or_else(|| fail(code::ERROR, format!("{} has no VERSION_ID", p.display())))
    }

    /// The slot the running /usr was booted from (`usrhash=` ↔ partition GUID).
    pub(super) fn booted_slot(&self, gpt: &Gpt) -> Result<Option<Slot>, StageFailure> {
        let p = &self.config.cmdline;
        let text = std::fs::read_to_string(p).map_err(|e| errors::io(code::ERROR, "reading", p, e))?;
        Ok(system::usrhash(&text).and_then(|root| system::booted_slot(gpt, &root)))
    }

    fn pending(&self) -> Result<Option<Pending>, StageFailure> {
        let dir = &self.config.state_dir;
        match journal::load::<Pending>(dir, journal::PENDING) {
            Ok(Loaded::Found(p)) => Ok(Some(p)),
            Ok(Loaded::Missing) => Ok(None),
            Ok(Loaded::Invalid(why)) => Err(fail(code::ERROR, format!("pending update record unreadable: {why}"))),
            Err(e) => Err(errors::io(
                code::ERROR,
                "reading",
                &journal::path(dir, journal::PENDING),
                e,
            )),
        }
    }

    pub(super) fn boot_status_impl(&self) -> Result<BootStatus, StageFailure> {
        let running_version = self.running_version()?;
        let gpt = self.read_gpt()?;
        let booted = self.booted_slot(&gpt)?;
        let health = match booted.map(|s| layout::slot_prio(&gpt, s)) {
            Some(Ok(p)) if p.successful == Successful::Yes => BootHealth::Good,
            Some(Ok(_)) => BootHealth::OnTrial,
            Some(Err(_)) | None => BootHealth::Unknown,
        };
        let pending = self.pending()?.map(|p| PendingUpdate { version: p.version });
        Ok(BootStatus {
            running_version,
            booted_slot: booted.map(|s| s.usr_label().to_string()),
            pending,
            health,
        })
    }

    /// Makes the passive slot unbootable again and removes the staged
    /// entry, the journal and the pending record. Idempotent.
    pub(super) fn unstage_locked(&self) -> Result<(), StageFailure> {
        let running = self.running_version()?;
        let mut gpt = self.read_gpt()?;
        let Some(booted) = self.booted_slot(&gpt)? else {
            return Err(fail(code::ERROR, "cannot tell the booted slot; refusing to unstage"));
        };
        let passive = booted.other();
        if layout::slot_prio(&gpt, passive)
            .map_err(|e| errors::slots("reading the passive slot", e))?
            .successful
            == Successful::No
        {
            // Never booted successfully: staged or half-written. Make it unbootable.
            layout::invalidate(&mut gpt, passive).map_err(|e| errors::slots("invalidating the passive slot", e))?;
            self.write_gpt(&gpt)?;
        }
        let esp = &self.config.esp;
        let mut versions: Vec<String> = Vec::new();
        if let Some(p) = self.pending()? {
            versions.push(p.version);
        }
        if let Ok(Loaded::Found(j)) = journal::load::<journal::Journal>(&self.config.state_dir, journal::JOURNAL) {
            versions.push(j.payload.version);
        }
        for v in versions.iter().filter(|v| **v != running) {
            bootent::remove(esp, v).map_err(|e| errors::slots("removing the staged boot entry", e))?;
        }
        let dir = &self.config.state_dir;
        for name in [journal::JOURNAL, journal::PENDING] {
            journal::remove(dir, name)
                .map_err(|e| errors::io(code::ERROR, "removing", &journal::path(dir, name), e))?;
        }
        tracing::info!(slot = passive.usr_label(), "unstaged");
        Ok(())
    }

    /// Blesses the running entry, marks the booted slot good (highest
    /// priority) and prunes entries other than the running version and the
    /// newest older version that is not marked bad (the rollback target).
    pub(super) fn mark_booted_good_locked(&self) -> Result<(), StageFailure> {
        let running = self.running_version()?;
        let mut gpt = self.read_gpt()?;
        let booted = self
            .booted_slot(&gpt)?
            .ok_or_else(|| fail(code::ERROR, "cannot tell the booted slot; refusing to mark it good"))?;
        let esp = &self.config.esp;
        bootent::bless(esp, &running).map_err(|e| errors::slots("blessing the running boot entry", e))?;
        layout::mark_good(&mut gpt, booted).map_err(|e| errors::slots("marking the booted slot good", e))?;
        self.write_gpt(&gpt)?;
        let entries = bootent::list(esp).map_err(|e| errors::slots("listing boot entries", e))?;
        let previous = entries
            .iter()
            .filter(|f| bootent::compare_versions(&f.name.version, &running) == Ordering::Less)
            .find(|f| !matches!(f.name.counting, Counting::Bad { .. }))
            .map(|f| f.name.version.clone());
        let mut keep = vec![running.as_str()];
        if let Some(p) = &previous {
            keep.push(p);
        }
        let removed = bootent::prune(esp, &keep).map_err(|e| errors::slots("pruning boot entries", e))?;
        tracing::info!(version = %running, slot = booted.usr_label(), pruned = removed.len(), "marked good");
        Ok(())
    }

    /// Makes the other slot boot next: it must have booted successfully
    /// before and have a boot entry. Marks it good with the highest
    /// priority, blesses its entry, and marks the running entry bad so
    /// systemd-boot sorts it last.
    pub(super) fn rollback_locked(&self) -> Result<String, StageFailure> {
        let running = self.running_version()?;
        let mut gpt = self.read_gpt()?;
        let booted = self
            .booted_slot(&gpt)?
            .ok_or_else(|| fail(code::ERROR, "cannot tell the booted slot; refusing to roll back"))?;
        let other = booted.other();
        let prio = layout::slot_prio(&gpt, other).map_err(|e| errors::slots("reading the other slot", e))?;
        if prio.successful == Successful::No {
            let why = if prio.tries > 0 {
                "holds a staged update that never booted (unstage it instead)"
            } else {
                "holds nothing that ever booted successfully"
            };
            return Err(fail(
                code::ERROR,
                format!("cannot roll back: slot {} {why}", other.usr_label()),
            ));
        }
        let esp = &self.config.esp;
        let others: Vec<_> = bootent::list(esp)
            .map_err(|e| errors::slots("listing boot entries", e))?
            .into_iter()
            .filter(|f| f.name.version != running)
            .collect();
        // The newest entry not marked bad; a bad one only if nothing else is left.
        let target = others
            .iter()
            .find(|f| !matches!(f.name.counting, Counting::Bad { .. }))
            .or(others.first())
            .map(|f| f.name.version.clone())
            .ok_or_else(|| {
                fail(
                    code::ERROR,
                    format!(
                        "cannot roll back: no boot entry other than the running {running} on {}",
                        esp.display()
                    ),
                )
            })?;
        layout::mark_good(&mut gpt, other).map_err(|e| errors::slots("marking the other slot good", e))?;
        self.write_gpt(&gpt)?;
        bootent::bless(esp, &target).map_err(|e| errors::slots("blessing the rollback entry", e))?;
        bootent::mark_bad(esp, &running).map_err(|e| errors::slots("marking the running entry bad", e))?;
        tracing::info!(from = %running, to = %target, slot = other.usr_label(), "rollback prepared");
        Ok(target)
    }
}
