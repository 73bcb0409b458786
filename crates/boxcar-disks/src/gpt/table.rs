//! Reading an existing GPT: `sfdisk --json` output parsed into the facts
//! Ignition compares (number, start, size, type GUID, GUID, label).

use serde::Deserialize;

/// One partition as it exists on the disk now. Sectors are logical sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingPartition {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub type_guid: String,
    pub guid: String,
    pub label: String,
}

/// The partition table of one disk (empty when the disk has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskInfo {
    pub partitions: Vec<ExistingPartition>,
}

impl DiskInfo {
    pub fn get(&self, number: u32) -> Option<&ExistingPartition> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

#[derive(Deserialize)]
struct Top {
    partitiontable: Table,
}

#[derive(Deserialize)]
struct Table {
    label: String,
    #[serde(default)]
    partitions: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    node: String,
    start: u64,
    size: u64,
    #[serde(rename = "type", default)]
    type_guid: String,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    name: String,
}

/// Parses `sfdisk --json <disk>`; `disk` is the path sfdisk was given, used
/// to recover partition numbers from node names (`/dev/loop0p3` → 3).
pub fn parse_sfdisk_json(json: &str, disk: &str) -> Result<DiskInfo, String> {
    let top: Top = serde_json::from_str(json).map_err(|e| format!("unexpected sfdisk output: {e}"))?;
    if top.partitiontable.label != "gpt" {
        return Err(format!(
            "disk has a {:?} partition table, not GPT (set wipeTable to replace it)",
            top.partitiontable.label
        ));
    }
    let mut partitions = Vec::new();
    for p in top.partitiontable.partitions {
        let number =
            node_number(&p.node, disk).ok_or_else(|| format!("cannot tell the partition number of {}", p.node))?;
        partitions.push(ExistingPartition {
            number,
            start: p.start,
            size: p.size,
            type_guid: p.type_guid.to_ascii_uppercase(),
            guid: p.uuid.to_ascii_uppercase(),
            label: p.name,
        });
    }
    Ok(DiskInfo { partitions })
}

fn node_number(node: &str, disk: &str) -> Option<u32> {
    let rest = node.strip_prefix(disk).unwrap_or(node);
    let digits: String = rest.chars().rev().take_while(|c| c.is_ascii_digit()).collect();
    let digits: String = digits.chars().rev().collect();
    let prefix = &rest[..rest.len() - digits.len()];
    if node.starts_with(disk) && !(prefix.is_empty() || prefix == "p") {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = r#"{
   "partitiontable": {
      "label": "gpt", "id": "EE021EDF-F3DA-4F7C-8C9B-07047A37743F", "device": "/dev/loop0",
      "unit": "sectors", "firstlba": 34, "lastlba": 204766, "sectorsize": 512,
      "partitions": [
         {"node": "/dev/loop0p1", "start": 2048, "size": 20480,
          "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "uuid": "8bca3dad-1440-4b2d-ae8e-89022bf9fa97", "name": "foo"},
         {"node": "/dev/loop0p10", "start": 22528, "size": 2048,
          "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "uuid": "11111111-1440-4B2D-AE8E-89022BF9FA97"}
      ]
   }
}"#;

    #[test]
    fn parses_numbers_labels_and_guids() {
        let d = parse_sfdisk_json(OUT, "/dev/loop0").unwrap();
        assert_eq!(d.partitions.len(), 2);
        let p1 = d.get(1).unwrap();
        assert_eq!((p1.start, p1.size, p1.label.as_str()), (2048, 20480, "foo"));
        assert_eq!(p1.guid, "8BCA3DAD-1440-4B2D-AE8E-89022BF9FA97");
        let p10 = d.get(10).unwrap();
        assert_eq!(p10.label, "");
        assert_eq!(p10.type_guid, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    }

    #[test]
    fn node_numbers() {
        assert_eq!(node_number("/dev/sda12", "/dev/sda"), Some(12));
        assert_eq!(node_number("/dev/nvme0n1p3", "/dev/nvme0n1"), Some(3));
        assert_eq!(node_number("/tmp/disk.img1", "/tmp/disk.img"), Some(1));
        assert_eq!(node_number("/dev/sdb1", "/dev/sda"), Some(1));
    }

    #[test]
    fn dos_table_is_refused() {
        let j = r#"{"partitiontable": {"label": "dos", "partitions": []}}"#;
        assert!(parse_sfdisk_json(j, "/dev/sda").unwrap_err().contains("not GPT"));
        assert!(parse_sfdisk_json("nonsense", "/dev/sda").is_err());
    }
}
