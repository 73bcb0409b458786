//! The disks/mount/umount plug point: an implementation of
//! `StorageStages` is called in stage order with the mode and the root,
//! its plan lines reach the dry-run output, and its errors are reported
//! with their JSON path.

use boxcar_provision::stages::storage::{StorageContext, StorageError, StorageStages};
use boxcar_provision::{Engine, Mode, Stage};
use std::path::Path;
use std::sync::{Arc, Mutex};

struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
    fail_mount: bool,
}

impl StorageStages for Recorder {
    fn disks(&self, cx: &StorageContext, plan: &mut Vec<String>) -> Result<(), StorageError> {
        let n = cx.config.storage.filesystems.len();
        self.calls.lock().unwrap().push(format!("disks {:?} {n}", cx.mode));
        plan.push("format /dev/vdb1 as ext4".into());
        Ok(())
    }
    fn mount(&self, cx: &StorageContext, _: &mut Vec<String>) -> Result<(), StorageError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("mount {:?} {}", cx.mode, cx.root.display()));
        if self.fail_mount {
            return Err(StorageError {
                json_path: Some("$.storage.filesystems.0".into()),
                message: "mounting /dev/vdb1 on /var: no such device".into(),
                source: None,
            });
        }
        Ok(())
    }
    fn files(&self, cx: &StorageContext, plan: &mut Vec<String>) -> Result<(), StorageError> {
        // The engine's fetcher is usable for key files.
        let key = boxcar_config::model::Resource {
            source: Some("data:,key".into()),
            ..Default::default()
        };
        let got = cx
            .fetcher
            .fetch(&key, boxcar_provision::fetch::Purpose::Contents)
            .unwrap();
        self.calls
            .lock()
            .unwrap()
            .push(format!("files {:?} {}", cx.mode, String::from_utf8_lossy(&got)));
        plan.push("write /etc/crypttab".into());
        Ok(())
    }
    fn umount(&self, cx: &StorageContext, _: &mut Vec<String>) -> Result<(), StorageError> {
        self.calls.lock().unwrap().push(format!("umount {:?}", cx.mode));
        Ok(())
    }
}

const CFG: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"filesystems":[{"device":"/dev/vdb1","format":"ext4","path":"/var"}]}}"#;

fn engine(root: &Path, calls: &Arc<Mutex<Vec<String>>>, fail_mount: bool, mode: Mode) -> Engine {
    let cfg = boxcar_config::ignition::parse(CFG.as_bytes(), boxcar_config::Strictness::Lenient)
        .unwrap()
        .config;
    let mut e = Engine::new(root, root.join("run")).with_config(cfg, true);
    e.storage = Box::new(Recorder {
        calls: calls.clone(),
        fail_mount,
    });
    e.mode = mode;
    e
}

#[test]
fn storage_stages_are_called_in_order() {
    let t = tempfile::tempdir().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut e = engine(t.path(), &calls, false, Mode::Apply);
    e.run(&Stage::ALL).map_err(|(_, f)| f).unwrap();
    let root = t.path().display().to_string();
    assert_eq!(
        *calls.lock().unwrap(),
        [
            "disks Apply 1".to_string(),
            format!("mount Apply {root}"),
            "files Apply key".into(),
            "umount Apply".into()
        ]
    );
}

#[test]
fn storage_plan_lines_and_errors_surface() {
    let t = tempfile::tempdir().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let out = engine(t.path(), &calls, false, Mode::DryRun)
        .run(&Stage::ALL)
        .map_err(|(_, f)| f)
        .unwrap();
    assert!(
        out.plan
            .contains(&(Stage::Disks, "format /dev/vdb1 as ext4".to_string())),
        "{:?}",
        out.plan
    );
    assert!(
        out.plan.contains(&(Stage::Files, "write /etc/crypttab".to_string())),
        "{:?}",
        out.plan
    );
    assert_eq!(calls.lock().unwrap()[0], "disks DryRun 1");

    let (_, f) = engine(t.path(), &calls, true, Mode::Apply)
        .run(&Stage::ALL)
        .unwrap_err();
    assert_eq!(f.stage, Stage::Mount);
    assert_eq!(f.json_path.as_deref(), Some("$.storage.filesystems.0"));
    assert_eq!(
        f.to_string(),
        "provisioning failed in stage mount at $.storage.filesystems.0: mounting /dev/vdb1 on /var: no such device"
    );
}

#[test]
fn default_build_refuses_storage_sections() {
    let t = tempfile::tempdir().unwrap();
    let cfg = boxcar_config::ignition::parse(CFG.as_bytes(), boxcar_config::Strictness::Lenient)
        .unwrap()
        .config;
    let mut e = Engine::new(t.path(), t.path().join("run")).with_config(cfg, true);
    let (_, f) = e.run(&Stage::ALL).unwrap_err();
    assert_eq!(f.stage, Stage::Disks);
    assert_eq!(f.json_path.as_deref(), Some("$.storage.filesystems"));
    assert!(f
        .cause
        .contains("disks stage: storage.disks/raid/filesystems/luks are not supported by this build"));
}
