//! The stage runner end to end: providers (cmdline over HTTP, fw_cfg,
//! metadata service, TFTP), base configs, stage-by-stage runs through the
//! cache, the result file, dry runs that touch nothing, and the binary's
//! failure report.

mod common;

use boxcar_provision::fetch::{Fetcher, Network, Purpose};
use boxcar_provision::provider::{
    CmdlineProvider, ConfigProvider, FileProvider, MetadataFlavor, MetadataProvider, NotAvailable, QemuFwCfgProvider,
};
use boxcar_provision::result::{ResultFile, Status};
use boxcar_provision::{Engine, Stage};
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::net::UdpSocket;
use std::path::Path;

fn empty_case() -> Case {
    serde_json::from_str(r#"{"description":"","config":{}}"#).unwrap()
}

const FILE_CFG: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/from-provider","contents":{"source":"data:,hi"}}]}}"#;

fn route(body: &str) -> http::Route {
    http::Route {
        body: body.into(),
        ..Default::default()
    }
}

#[test]
fn cmdline_provider_fetches_over_http_with_config_accept_header() {
    let mut routes = BTreeMap::new();
    routes.insert("/user.ign".to_string(), route(FILE_CFG));
    let server = http::Server::start(routes);
    let t = scratch();
    let cmdline = t.path().join("cmdline");
    fs::write(
        &cmdline,
        format!("ro quiet boxcar.config.url={}/user.ign console=ttyS0\n", server.base),
    )
    .unwrap();
    let root = t.path().join("root");
    make_tree(&root, &empty_case());
    let mut e = Engine::new(&root, t.path().join("run"));
    e.providers = vec![Box::new(CmdlineProvider { cmdline })];
    let out = e.run(&Stage::ALL).map_err(|(_, f)| f).unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/from-provider")).unwrap(), "hi");
    let statuses: Vec<_> = out.records.iter().map(|r| (r.stage.as_str(), r.status)).collect();
    assert_eq!(
        statuses[0],
        ("fetch-offline", Status::Deferred),
        "an http config URL needs the network"
    );
    assert_eq!(statuses[1], ("fetch", Status::Success));
    let reqs = server.requests.lock().unwrap().join("\n");
    assert!(reqs.contains("application/vnd.coreos.ignition+json"), "{reqs}");
    let result: ResultFile =
        serde_json::from_slice(&fs::read(root.join("etc/.boxcar-provision-result.json")).unwrap()).unwrap();
    assert!(result.user_config_provided);
    let names: Vec<_> = result.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["fetch-offline", "fetch", "kargs", "disks", "mount", "files"]);
}

#[test]
fn stages_run_one_at_a_time_share_the_cache() {
    let t = scratch();
    let root = t.path().join("root");
    make_tree(&root, &empty_case());
    let cfg = t.path().join("c.ign");
    fs::write(&cfg, FILE_CFG).unwrap();
    let run = t.path().join("run");
    // files before any fetch: a clear error.
    let mut e = Engine::new(&root, &run);
    let (_, f) = e.run(&[Stage::Files]).unwrap_err();
    assert!(f.cause.contains("run the fetch-offline or fetch stage first"), "{f}");
    for s in Stage::ALL {
        let mut e = Engine::new(&root, &run);
        e.providers = vec![Box::new(FileProvider { path: cfg.clone() })];
        e.run(&[s]).map_err(|(_, f)| f).unwrap();
    }
    assert_eq!(fs::read_to_string(root.join("etc/from-provider")).unwrap(), "hi");
    let result: ResultFile =
        serde_json::from_slice(&fs::read(root.join("etc/.boxcar-provision-result.json")).unwrap()).unwrap();
    assert_eq!(result.stages.len(), 6, "{:?}", result.stages);
    assert!(result.stages.iter().all(|s| s.status != Status::Failed));
}

#[test]
fn base_configs_merge_under_the_user_config() {
    let t = scratch();
    let base = t.path().join("base.d");
    fs::create_dir_all(&base).unwrap();
    fs::write(
        base.join("10-a.ign"),
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/base","contents":{"source":"data:,base"}},{"path":"/etc/shared","mode":384,"contents":{"source":"data:,from-base"}}]}}"#,
    )
    .unwrap();
    fs::write(base.join("ignored.txt"), "not a config").unwrap();
    let cfg = t.path().join("c.ign");
    fs::write(&cfg, r#"{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/shared","contents":{"source":"data:,from-user"}}]}}"#).unwrap();
    let root = t.path().join("root");
    make_tree(&root, &empty_case());
    let mut e = Engine::new(&root, t.path().join("run"));
    e.providers = vec![Box::new(FileProvider { path: cfg })];
    e.base_dir = Some(base);
    e.run(&Stage::ALL).map_err(|(_, f)| f).unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/base")).unwrap(), "base");
    assert_eq!(fs::read_to_string(root.join("etc/shared")).unwrap(), "from-user");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(root.join("etc/shared")).unwrap().permissions().mode() & 0o777,
        0o600,
        "mode from base kept"
    );
}

#[test]
fn fw_cfg_and_metadata_providers() {
    let t = scratch();
    let fw = t.path().join("fw_cfg");
    let d = fw.join("by_name/opt/org.flatcar-linux/config");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("raw"), FILE_CFG).unwrap();
    let f = Fetcher::new(Network::Offline);
    let p = QemuFwCfgProvider { base: fw };
    assert_eq!(p.fetch(&f).unwrap().unwrap(), FILE_CFG.as_bytes());

    let mut routes = BTreeMap::new();
    routes.insert("/latest/user-data".to_string(), route("ec2"));
    routes.insert("/openstack/latest/user_data".to_string(), route("openstack"));
    let server = http::Server::start(routes);
    let online = Fetcher::new(Network::Online);
    let ec2 = MetadataProvider {
        base_url: server.base.clone(),
        flavor: MetadataFlavor::Ec2,
    };
    assert_eq!(ec2.fetch(&online).unwrap().unwrap(), b"ec2");
    let os = MetadataProvider {
        base_url: format!("{}/", server.base),
        flavor: MetadataFlavor::OpenStack,
    };
    assert_eq!(os.fetch(&online).unwrap().unwrap(), b"openstack");
    let none = MetadataProvider {
        base_url: format!("{}/nothing", server.base),
        flavor: MetadataFlavor::Ec2,
    };
    assert_eq!(none.fetch(&online).unwrap(), None, "404 means no user data");
    let na = NotAvailable {
        platform: "aws-s3".into(),
    };
    assert_eq!(
        na.fetch(&online).unwrap_err().to_string(),
        "config provider aws-s3: not available on this platform"
    );
}

/// A one-shot TFTP server (RFC 1350, octet mode) on 127.0.0.1:0.
fn tftp_server(data: Vec<u8>) -> (u16, std::thread::JoinHandle<String>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 600];
        let (n, client) = sock.recv_from(&mut buf).unwrap();
        let req = String::from_utf8_lossy(&buf[2..n]).into_owned();
        let xfer = UdpSocket::bind("127.0.0.1:0").unwrap();
        for (i, chunk) in data
            .chunks(512)
            .chain(std::iter::once(&[][..]).filter(|_| data.len() % 512 == 0))
            .enumerate()
        {
            let mut pkt = vec![0, 3];
            pkt.extend_from_slice(&((i + 1) as u16).to_be_bytes());
            pkt.extend_from_slice(chunk);
            xfer.send_to(&pkt, client).unwrap();
            let (_, _) = xfer.recv_from(&mut buf).unwrap(); // ACK
        }
        req
    });
    (port, h)
}

#[test]
fn tftp_source() {
    let data: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    let (port, h) = tftp_server(data.clone());
    let f = Fetcher::new(Network::Online);
    let got = f
        .fetch_url(
            &format!("tftp://127.0.0.1:{port}/boot/config.ign"),
            &[],
            Purpose::Contents,
        )
        .unwrap();
    assert_eq!(got, data);
    assert!(h.join().unwrap().starts_with("boot/config.ign\0octet\0"));
    let off = Fetcher::new(Network::Offline);
    assert!(off
        .fetch_url("tftp://127.0.0.1:1/x", &[], Purpose::Contents)
        .unwrap_err()
        .to_string()
        .contains("needs the network"));
}

fn snapshot(dir: &Path) -> Vec<String> {
    let mut v = manifest(dir);
    v.sort();
    v
}

#[test]
fn dry_run_describes_and_touches_nothing() {
    let t = scratch();
    let root = t.path().join("root");
    make_tree(&root, &empty_case());
    let cfg = t.path().join("c.ign");
    fs::write(
        &cfg,
        r#"{"ignition":{"version":"3.3.0"},"kernelArguments":{"shouldExist":["a=b"]},
        "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA"]}]},
        "storage":{"files":[{"path":"/etc/x","contents":{"source":"data:,SECRETVALUE"}}],"links":[{"path":"/l","target":"/etc/x"}]},
        "systemd":{"units":[{"name":"a.service","enabled":true,"contents":"[Unit]\n"},{"name":"b.service","mask":true}]}}"#,
    )
    .unwrap();
    let before = snapshot(&root);
    let run = t.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxcar-provision"))
        .arg("--root")
        .arg(&root)
        .arg("--config")
        .arg(&cfg)
        .arg("--run-dir")
        .arg(&run)
        .arg("--dry-run")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "[kargs] would run kargs helper none --should-exist a=b",
        "[files] would create or modify user core with 1 SSH key(s)",
        "[files] would file /etc/x from data:<",
        "[files] would symbolic link /l -> /etc/x",
        "[files] would unit a.service: unit file",
        "[files] would unit b.service: mask",
        "[files] would preset enable a.service",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("SECRETVALUE"));
    assert_eq!(snapshot(&root), before, "dry run changed the root");
    assert!(!run.exists(), "dry run wrote its run directory");
}

#[test]
fn binary_reports_stage_path_and_cause() {
    let t = scratch();
    let root = t.path().join("root");
    make_tree(&root, &empty_case());
    let cfg = t.path().join("c.ign");
    fs::write(
        &cfg,
        r#"{"ignition":{"version":"3.3.0"},"kernelArguments":{"shouldExist":["a=b"]}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxcar-provision"))
        .arg("--root")
        .arg(&root)
        .arg("--config")
        .arg(&cfg)
        .arg("--run-dir")
        .arg(t.path().join("run"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("provisioning failed in stage kargs at $.kernelArguments: kernel arguments: changing kernel arguments is not available on this platform"),
        "{err}"
    );
}

#[test]
fn http_proxy_from_config_and_no_proxy() {
    // The test server plays the proxy: it sees the absolute-form request.
    let mut routes = BTreeMap::new();
    routes.insert("http://config.invalid/via-proxy".to_string(), route("proxied\n"));
    routes.insert("/direct".to_string(), route("direct\n"));
    let proxy = http::Server::start(routes);
    let t = scratch();
    let root = t.path().join("root");
    make_tree(&root, &empty_case());
    let cfg = t.path().join("c.ign");
    let direct_host = proxy
        .base
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    fs::write(
        &cfg,
        format!(
            r#"{{"ignition":{{"version":"3.3.0","proxy":{{"httpProxy":"{p}","noProxy":["{direct_host}"]}}}},
            "storage":{{"files":[{{"path":"/etc/p","contents":{{"source":"http://config.invalid/via-proxy"}}}},
                               {{"path":"/etc/d","contents":{{"source":"{p}/direct"}}}}]}}}}"#,
            p = proxy.base
        ),
    )
    .unwrap();
    let mut e = Engine::new(&root, t.path().join("run"));
    e.providers = vec![Box::new(FileProvider { path: cfg })];
    e.http.max_attempts = 1;
    e.run(&Stage::ALL).map_err(|(_, f)| f).unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/p")).unwrap(), "proxied\n");
    assert_eq!(fs::read_to_string(root.join("etc/d")).unwrap(), "direct\n");
    let reqs = proxy.requests.lock().unwrap().join("\n");
    assert!(reqs.contains("GET http://config.invalid/via-proxy HTTP/1.1"), "{reqs}");
    assert!(
        reqs.contains("GET /direct HTTP/1.1"),
        "noProxy host must be fetched directly: {reqs}"
    );
}
