//! Shared pieces of the image scenarios: image versions, host servers and
//! Butane text helpers.
#![allow(dead_code)]

pub mod images;
pub mod provision_time;
pub mod servers;

/// `text` with every line indented by `spaces`, for a Butane `inline: |` block.
pub fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}
