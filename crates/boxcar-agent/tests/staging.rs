//! The staging engine end to end on a disk image: stage 2.0.0 into slot B
//! from a loopback HTTP server, check every effect (partition bytes, GUIDs,
//! boot entry, gptprio bits as cgpt reads them), then the life cycle after
//! the reboot: boot status, blessing, pruning, rollback, unstage.

mod support;

use boxcar_agent::{Offer, SlotStager, Stager};
use boxcar_slots::layout;
use boxcar_slots::Slot;
use std::sync::atomic::AtomicBool;
use support::*;

fn offer(server: &Server, payload: &[u8], version: &str) -> Offer {
    Offer {
        version: version.into(),
        url: server.url.clone(),
        size: payload.len() as u64,
        sha256: Some(sha256_hex(payload)),
    }
}

#[test]
fn stage_boot_bless_and_roll_back() {
    let w = World::new();
    w.assert_only_v1_bootable();
    let usr = usr_image(1500, 22);
    let uki = usr_image(5, 23);
    let (payload, m) = w.payload(V2, &usr, &uki, None);
    let server = Server::start(payload.clone(), Mode::Honest);
    let stager = SlotStager::new(w.config());

    let before = stager.boot_status().unwrap();
    assert_eq!(before.running_version, V1);
    assert_eq!(before.booted_slot.as_deref(), Some("USR-A"));
    assert_eq!(before.pending, None);

    let mut progress = Vec::new();
    let staged = stager
        .stage(
            &offer(&server, &payload, V2),
            &mut |d| progress.push(d),
            &AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!((staged.version.as_str(), staged.slot.as_str()), (V2, "USR-B"));
    assert!(progress.windows(2).all(|p| p[0] <= p[1]), "progress not monotonic");
    assert_eq!(progress.last(), Some(&(payload.len() as u64)));
    w.assert_staged(&m, &usr, &uki);
    // The bits as Debian's cgpt reads them: B P2 T1 S0 above A P1 T0 S1.
    let gpt = w.gpt();
    let b = layout::find_slot(&gpt, Slot::B).unwrap().usr;
    let a = layout::find_slot(&gpt, Slot::A).unwrap().usr;
    assert_eq!(
        [
            cgpt_field(&w.disk, b, "-P"),
            cgpt_field(&w.disk, b, "-T"),
            cgpt_field(&w.disk, b, "-S")
        ],
        [2, 1, 0]
    );
    assert_eq!(
        [
            cgpt_field(&w.disk, a, "-P"),
            cgpt_field(&w.disk, a, "-T"),
            cgpt_field(&w.disk, a, "-S")
        ],
        [1, 0, 1]
    );
    // veritysetup accepts the written slot (partitions extracted from the disk).
    let dir = w.dir.path();
    std::fs::write(dir.join("b-usr"), w.partition("USR-B", m.usr.size as usize)).unwrap();
    std::fs::write(
        dir.join("b-verity"),
        w.partition("USR-B-VERITY", m.verity.size as usize),
    )
    .unwrap();
    let out = std::process::Command::new("veritysetup")
        .arg("verify")
        .arg(dir.join("b-usr"))
        .arg(dir.join("b-verity"))
        .arg(&m.verity_params.root_hash)
        .output()
        .unwrap();
    assert!(out.status.success(), "veritysetup verify: {out:?}");

    // Staging the same offer again finds it staged and changes nothing.
    server.reset_counters();
    stager
        .stage(&offer(&server, &payload, V2), &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(server.sent.load(std::sync::atomic::Ordering::SeqCst), 0);
    w.assert_staged(&m, &usr, &uki);

    // The boot loader spends the try and boots B; the new system comes up.
    let mut gpt = w.gpt();
    assert_eq!(layout::simulate_boot(&mut gpt).unwrap(), Some(Slot::B));
    boxcar_slots::write(&w.disk, &gpt, boxcar_slots::Mbr::Keep).unwrap();
    let root: [u8; 32] = hex::decode(&m.verity_params.root_hash).unwrap().try_into().unwrap();
    w.boot_into(V2, &root);
    let st = stager.boot_status().unwrap();
    assert_eq!(st.running_version, V2);
    assert_eq!(st.booted_slot.as_deref(), Some("USR-B"));
    assert_eq!(st.pending.as_ref().map(|p| p.version.as_str()), Some(V2));
    assert_eq!(
        boxcar_agent::after_boot(st.pending.as_ref(), &st.running_version),
        boxcar_agent::BootReport::Succeeded { version: V2.into() }
    );
    stager.clear_pending().unwrap();
    assert_eq!(stager.boot_status().unwrap().pending, None);

    // Healthy: bless, mark good, prune (keeps 1.0.0 as the rollback target).
    stager.mark_booted_good().unwrap();
    assert_eq!(
        w.entries(),
        vec![format!("boxcar-{V2}.efi"), format!("boxcar-{V1}.efi")]
    );
    let gpt = w.gpt();
    let pb = layout::slot_prio(&gpt, Slot::B).unwrap();
    assert_eq!((pb.tries, pb.successful), (0, boxcar_slots::Successful::Yes));
    assert_eq!(layout::next_boot_slot(&gpt).unwrap(), Some(Slot::B));

    // Manual rollback: A boots next, the running entry sorts last.
    assert_eq!(stager.rollback().unwrap(), V1);
    let gpt = w.gpt();
    assert_eq!(layout::next_boot_slot(&gpt).unwrap(), Some(Slot::A));
    assert_eq!(
        w.entries(),
        vec![format!("boxcar-{V2}+0.efi"), format!("boxcar-{V1}.efi")]
    );
    assert_eq!(cgpt_field(&w.disk, a, "-P"), 2);
}

#[test]
fn rollback_refused_when_the_other_slot_never_booted_and_unstage_undoes_staging() {
    let w = World::new();
    let stager = SlotStager::new(w.config());
    // Fresh install: slot B never held anything.
    let e = stager.rollback().unwrap_err();
    assert!(e.message.contains("USR-B holds nothing"), "{}", e.message);
    let usr = usr_image(700, 5);
    let uki = usr_image(2, 6);
    let (payload, _) = w.payload(V2, &usr, &uki, None);
    let server = Server::start(payload.clone(), Mode::Honest);
    stager
        .stage(&offer(&server, &payload, V2), &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    // Staged but never booted: rollback to it is refused, unstage undoes it.
    let e = stager.rollback().unwrap_err();
    assert!(e.message.contains("staged update that never booted"), "{}", e.message);
    stager.unstage().unwrap();
    stager.unstage().unwrap();
    assert_eq!(stager.boot_status().unwrap().pending, None);
    w.assert_only_v1_bootable();
}

#[test]
fn cancel_stops_the_download_and_leaves_nothing_bootable() {
    let w = World::new();
    let usr = usr_image(1500, 8);
    let (payload, _) = w.payload(V2, &usr, b"uki", None);
    let server = Server::start(payload.clone(), Mode::Honest);
    let stager = SlotStager::new(w.config());
    let cancel = AtomicBool::new(false);
    let e = stager
        .stage(
            &offer(&server, &payload, V2),
            &mut |done| {
                if done > 100_000 {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            },
            &cancel,
        )
        .unwrap_err();
    assert!(e.message.contains("cancelled"), "{}", e.message);
    w.assert_only_v1_bootable();
}
