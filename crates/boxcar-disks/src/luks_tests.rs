use super::*;
use boxcar_config::model::{Clevis, ClevisCustom, Tang};

fn luks() -> Luks {
    Luks {
        name: "data".into(),
        device: Some("/dev/vdb1".into()),
        ..Default::default()
    }
}

#[test]
fn format_command_like_ignition() {
    let mut l = luks();
    assert_eq!(
        format_cmd(&l, "/dev/vdb1", "/tmp/k").to_string(),
        "cryptsetup luksFormat --type luks2 --key-file /tmp/k /dev/vdb1"
    );
    l.label = Some("DATA".into());
    l.uuid = Some("2c5cbd63-1c57-4c2e-8a5f-2a3f4b2c9f10".into());
    l.options = vec!["--cipher".into(), "aes-xts-plain64".into()];
    assert_eq!(
        format_cmd(&l, "/dev/vdb1", "/tmp/k").to_string(),
        "cryptsetup luksFormat --type luks2 --key-file /tmp/k --label DATA \
         --uuid 2c5cbd63-1c57-4c2e-8a5f-2a3f4b2c9f10 --cipher aes-xts-plain64 /dev/vdb1"
    );
}

#[test]
fn open_command_with_discard_and_options() {
    let mut l = luks();
    assert_eq!(
        open_cmd(&l, "/dev/vdb1", "/tmp/k").to_string(),
        "cryptsetup luksOpen /dev/vdb1 data --key-file /tmp/k"
    );
    l.discard = Some(true);
    l.open_options = vec!["--perf-no_read_workqueue".into()];
    assert_eq!(
        open_cmd(&l, "/dev/vdb1", "/tmp/k").to_string(),
        "cryptsetup luksOpen /dev/vdb1 data --key-file /tmp/k --perf-no_read_workqueue --allow-discards"
    );
}

#[test]
fn clevis_sss_config() {
    let mut c = Clevis {
        tpm2: Some(true),
        ..Default::default()
    };
    assert!(clevis_present(&c));
    assert_eq!(
        clevis_config(&c).unwrap(),
        ("sss".into(), r#"{"pins":{"tpm2":{}},"t":1}"#.into())
    );
    c.tang = vec![Tang {
        url: "http://tang".into(),
        thumbprint: Some("abc".into()),
        advertisement: None,
    }];
    c.threshold = Some(2);
    assert_eq!(
        clevis_config(&c).unwrap().1,
        r#"{"pins":{"tang":[{"url":"http://tang","thp":"abc"}],"tpm2":{}},"t":2}"#
    );
    c.tpm2 = None;
    c.tang[0].advertisement = Some(r#"{"payload":"x"}"#.into());
    assert_eq!(
        clevis_config(&c).unwrap().1,
        r#"{"pins":{"tang":[{"url":"http://tang","thp":"abc","adv":{"payload":"x"}}]},"t":2}"#
    );
    assert!(needs_network(&c));
    c.tang[0].advertisement = Some("not json".into());
    assert!(clevis_config(&c).is_err());
}

#[test]
fn clevis_custom_pin() {
    let c = Clevis {
        custom: ClevisCustom {
            pin: Some("tpm2".into()),
            config: Some(r#"{"pcr_ids":"7"}"#.into()),
            needs_network: Some(false),
        },
        ..Default::default()
    };
    assert!(clevis_present(&c));
    assert!(!needs_network(&c));
    assert_eq!(clevis_config(&c).unwrap(), ("tpm2".into(), r#"{"pcr_ids":"7"}"#.into()));
    assert!(!clevis_present(&Clevis::default()));
}

#[test]
fn key_file_is_private_and_removed() {
    use std::os::unix::fs::PermissionsExt;
    let key = Secret::new(b"0123".to_vec());
    let kf = KeyFile::write(&key).unwrap();
    let p = kf.path();
    let meta = std::fs::metadata(&p).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(&p).unwrap(), b"0123");
    drop(kf);
    assert!(!Path::new(&p).exists());
}

#[test]
fn crypttab_lines() {
    let mut v = LuksVolume {
        name: "data".into(),
        uuid: Some("u-1".into()),
        key: Some(Secret::new(b"k".to_vec())),
        needs_network: false,
    };
    assert_eq!(crate::persist::crypttab_line(&v), "data UUID=u-1 /etc/luks/data luks\n");
    v.key = None;
    v.needs_network = true;
    assert_eq!(crate::persist::crypttab_line(&v), "data UUID=u-1 none luks,_netdev\n");
    // The key never shows in Debug output of the report.
    let v = LuksVolume {
        key: Some(Secret::new(b"topsecret".to_vec())),
        ..v
    };
    assert!(!format!("{v:?}").contains("topsecret"));
}
