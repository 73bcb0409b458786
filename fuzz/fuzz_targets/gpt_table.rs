//! Fuzzes the GPT parser the update agent runs on the boot disk and on
//! image files: headers, entry arrays and boot-entry names must never panic,
//! and an accepted table must survive an encode/parse round trip unchanged.
#![no_main]
use boxcar_slots::gpt::{parse_header, Gpt, SECTOR};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = boxcar_slots::bootent::EntryName::parse(&String::from_utf8_lossy(data));
    if data.len() < SECTOR as usize {
        return;
    }
    let (sector, array) = data.split_at(SECTOR as usize);
    let Ok(h) = parse_header(sector, 1) else { return };
    let Ok(gpt) = Gpt::from_header_and_entries(&h, array, h.last_usable.saturating_add(h.array_sectors() + 2)) else {
        return;
    };
    if gpt.entries.len() as u32 != h.num_entries || h.entry_size != 128 {
        return;
    }
    let Ok(bytes) = gpt.encode_entries() else { return };
    let (primary, _) = gpt.headers(&bytes);
    let again = Gpt::from_header_and_entries(&primary, &bytes, gpt.total_sectors).expect("re-parsing our own encoding");
    assert_eq!(
        again
            .entries
            .iter()
            .map(|e| (e.type_guid, e.guid, e.first_lba, e.last_lba, e.attributes))
            .collect::<Vec<_>>(),
        gpt.entries
            .iter()
            .map(|e| (e.type_guid, e.guid, e.first_lba, e.last_lba, e.attributes))
            .collect::<Vec<_>>()
    );
});
