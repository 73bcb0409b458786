//! The engine: holds the pluggable parts (providers, storage stages,
//! kargs helper, tools) and runs stages, recording each one.

use crate::config::{self, Assembled};
use crate::error::ConfigError;
use crate::fetch::{Fetcher, HttpOptions, Network};
use crate::owners::Owners;
use crate::provider::ConfigProvider;
use crate::result::{self, ResultFile, RunState, StageRecord, Status};
use crate::root::Root;
use crate::stages::entries::{self, Context};
use crate::stages::kargs::{KargsHelper, KargsNotAvailable};
use crate::stages::storage::{Mode, NoStorage, StorageContext, StorageStages};
use crate::stages::users::{self, KeysFile, ShadowTools};
use crate::stages::{chain, units, Stage, StageFailure};
use boxcar_config::model::Config;
use boxcar_config::JsonStyle;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

/// A failed step: where in the config, and why.
struct StepError {
    json_path: Option<String>,
    cause: String,
}

impl<E: std::error::Error> From<E> for StepError {
    fn from(e: E) -> Self {
        StepError {
            json_path: None,
            cause: chain(&e),
        }
    }
}

fn at<E: std::error::Error>(path: impl Into<String>) -> impl FnOnce(E) -> StepError {
    let p = path.into();
    move |e| StepError {
        json_path: Some(p),
        cause: chain(&e),
    }
}

/// What a run did: per-stage records and, in dry-run mode, the plan.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: Vec<StageRecord>,
    /// `(stage, what it would do)` lines; filled in dry-run mode.
    pub plan: Vec<(Stage, String)>,
}

/// The provisioning engine.
pub struct Engine {
    pub root: Root,
    /// Cache and state between stage invocations (`/run/boxcar-provision`).
    pub run_dir: PathBuf,
    pub providers: Vec<Box<dyn ConfigProvider>>,
    /// `base.d` directory; `None` for no base configs.
    pub base_dir: Option<PathBuf>,
    pub storage: Box<dyn StorageStages>,
    pub kargs: Box<dyn KargsHelper>,
    pub shadow: ShadowTools,
    pub keys_file: KeysFile,
    pub http: HttpOptions,
    pub mode: Mode,
    config: Option<Assembled>,
    plan: Vec<(Stage, String)>,
}

impl Engine {
    /// An engine with the defaults: no storage support, no kargs helper.
    pub fn new(root: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Engine {
        Engine {
            root: Root::new(root.into()),
            run_dir: run_dir.into(),
            providers: Vec::new(),
            base_dir: None,
            storage: Box::new(NoStorage),
            kargs: Box::new(KargsNotAvailable),
            shadow: ShadowTools::default(),
            keys_file: KeysFile::default(),
            http: HttpOptions::default(),
            mode: Mode::Apply,
            config: None,
            plan: Vec::new(),
        }
    }

    /// Use an already assembled config instead of providers (tests, tools).
    pub fn with_config(mut self, config: Config, user_config_provided: bool) -> Engine {
        self.config = Some(Assembled {
            config,
            user_config_provided,
            sources: vec!["given".into()],
        });
        self
    }

    fn cache_path(&self) -> PathBuf {
        self.run_dir.join("config.json")
    }
    fn neednet_path(&self) -> PathBuf {
        self.run_dir.join("neednet")
    }
    fn state_path(&self) -> PathBuf {
        self.run_dir.join("state.json")
    }

    /// Run `stages` in order; stop at the first failure.
    pub fn run(&mut self, stages: &[Stage]) -> Result<Outcome, (Outcome, StageFailure)> {
        let mut out = Outcome::default();
        let mut state = if self.mode == Mode::Apply {
            RunState::load(&self.state_path())
        } else {
            RunState::default()
        };
        for &stage in stages {
            let started = SystemTime::now();
            let t = Instant::now();
            tracing::info!(stage = stage.name(), "stage starting");
            let res = self.run_stage(stage, &mut state);
            let mut rec = StageRecord {
                stage: stage.name().into(),
                status: Status::Success,
                started: result::rfc3339(started),
                duration_ms: t.elapsed().as_millis() as u64,
                json_path: None,
                error: None,
            };
            match res {
                Ok(status) => {
                    rec.status = status;
                    tracing::info!(stage = stage.name(), ms = rec.duration_ms, ?status, "stage done");
                    state.record(rec.clone());
                    if stage == Stage::Files && self.mode == Mode::Apply {
                        if let Err(e) = self.write_result(&state) {
                            let f = StageFailure {
                                stage,
                                json_path: None,
                                cause: e.cause,
                            };
                            out.records = state.stages.clone();
                            return Err((out, f));
                        }
                    }
                    out.records.push(rec);
                    self.save_state(&state);
                }
                Err(e) => {
                    rec.status = Status::Failed;
                    rec.json_path = e.json_path.clone();
                    rec.error = Some(e.cause.clone());
                    state.record(rec.clone());
                    out.records.push(rec);
                    self.save_state(&state);
                    if stage == Stage::Files && self.mode == Mode::Apply {
                        let _ = self.write_result(&state);
                    }
                    out.plan = std::mem::take(&mut self.plan);
                    return Err((
                        out,
                        StageFailure {
                            stage,
                            json_path: e.json_path,
                            cause: e.cause,
                        },
                    ));
                }
            }
        }
        out.plan = std::mem::take(&mut self.plan);
        Ok(out)
    }

    fn save_state(&self, state: &RunState) {
        if self.mode == Mode::DryRun {
            return;
        }
        let _ = std::fs::create_dir_all(&self.run_dir);
        if let Ok(b) = serde_json::to_vec_pretty(state) {
            let _ = std::fs::write(self.state_path(), b);
        }
    }

    fn say(&mut self, stage: Stage, line: impl Into<String>) {
        self.plan.push((stage, line.into()));
    }

    fn run_stage(&mut self, stage: Stage, state: &mut RunState) -> Result<Status, StepError> {
        match stage {
            Stage::FetchOffline => self.fetch(Network::Offline, state),
            Stage::Fetch => {
                let cached = self.config.is_some() || (self.mode == Mode::Apply && self.cache_path().exists());
                if cached && !self.neednet_path().exists() {
                    return Ok(Status::Skipped);
                }
                self.fetch(Network::Online, state)
            }
            Stage::Kargs => {
                let cfg = self.load_config()?;
                let k = &cfg.kernel_arguments;
                if k.should_exist.is_empty() && k.should_not_exist.is_empty() {
                    return Ok(Status::Skipped);
                }
                if self.mode == Mode::DryRun {
                    let args = crate::stages::kargs::helper_args(k).join(" ");
                    let helper = self.kargs.name();
                    self.say(stage, format!("run kargs helper {helper} {args}"));
                    return Ok(Status::Success);
                }
                self.kargs.apply(k).map_err(at("$.kernelArguments"))?;
                Ok(Status::Success)
            }
            Stage::Disks | Stage::Mount | Stage::Umount => {
                let cfg = self.load_config()?;
                let mut plan = Vec::new();
                let fetcher = self.fetcher_for(&cfg)?;
                let cx = StorageContext {
                    config: &cfg,
                    root: self.root.base(),
                    mode: self.mode,
                    fetcher: &fetcher,
                    run_dir: &self.run_dir,
                };
                let r = match stage {
                    Stage::Disks => self.storage.disks(&cx, &mut plan),
                    Stage::Mount => self.storage.mount(&cx, &mut plan),
                    _ => self.storage.umount(&cx, &mut plan),
                };
                for l in plan {
                    self.say(stage, l);
                }
                r.map_err(|e| StepError {
                    json_path: e.json_path.clone(),
                    cause: chain(&e),
                })?;
                Ok(Status::Success)
            }
            Stage::Files => {
                let cfg = self.load_config()?;
                self.files(&cfg)?;
                Ok(Status::Success)
            }
        }
    }

    /// A fetcher configured from the config's `ignition` section.
    fn fetcher_for(&self, cfg: &Config) -> Result<Fetcher, StepError> {
        Fetcher::for_config(&Fetcher::with_options(Network::Online, self.http.clone()), cfg)
            .map_err(at("$.ignition.security.tls.certificateAuthorities"))
    }

    fn fetch(&mut self, network: Network, state: &mut RunState) -> Result<Status, StepError> {
        if self.config.is_some() {
            return Ok(Status::Skipped);
        }
        let fetcher = Fetcher::with_options(network, self.http.clone());
        match config::assemble(&self.providers, self.base_dir.as_deref(), &fetcher) {
            Ok(a) => {
                state.user_config_provided = a.user_config_provided;
                if self.mode == Mode::DryRun {
                    let stage = if network == Network::Offline {
                        Stage::FetchOffline
                    } else {
                        Stage::Fetch
                    };
                    let from = a.sources.join(", ");
                    self.say(
                        stage,
                        format!(
                            "use config from {}",
                            if from.is_empty() { "nowhere (empty)" } else { &from }
                        ),
                    );
                } else {
                    self.write_cache(&a.config)?;
                }
                self.config = Some(a);
                Ok(Status::Success)
            }
            Err(e) if network == Network::Offline && config::is_needs_network(&e) => {
                tracing::info!("config needs the network; deferring to the fetch stage");
                if self.mode == Mode::Apply {
                    std::fs::create_dir_all(&self.run_dir).map_err(at("$"))?;
                    std::fs::write(self.neednet_path(), b"").map_err(at("$"))?;
                } else {
                    self.say(
                        Stage::FetchOffline,
                        "config needs the network; the fetch stage would fetch it",
                    );
                }
                Ok(Status::Deferred)
            }
            Err(e) => Err(config_error(e)),
        }
    }

    fn write_cache(&self, cfg: &Config) -> Result<(), StepError> {
        let path = self.cache_path();
        std::fs::create_dir_all(&self.run_dir).map_err(|source| ConfigError::CacheWrite {
            path: self.run_dir.clone(),
            source,
        })?;
        // The cache holds secrets (hashes, key material): 0600.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| ConfigError::CacheWrite {
                path: path.clone(),
                source,
            })?;
        use std::io::Write;
        f.write_all(cfg.to_json(JsonStyle::Compact).as_bytes())
            .map_err(|source| ConfigError::CacheWrite {
                path: path.clone(),
                source,
            })?;
        let _ = std::fs::remove_file(self.neednet_path());
        Ok(())
    }

    fn load_config(&mut self) -> Result<Config, StepError> {
        if let Some(a) = &self.config {
            return Ok(a.config.clone());
        }
        let path = self.cache_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NoCache { path }.into());
            }
            Err(source) => return Err(ConfigError::CacheRead { path, source }.into()),
        };
        let cfg = config::parse(&bytes, &path.display().to_string()).map_err(config_error)?;
        let provided = RunState::load(&self.state_path()).user_config_provided;
        self.config = Some(Assembled {
            config: cfg.clone(),
            user_config_provided: provided,
            sources: vec![],
        });
        Ok(cfg)
    }

    /// The files stage: groups, users (+ SSH keys), filesystem entries,
    /// units, presets — Ignition's order.
    fn files(&mut self, cfg: &Config) -> Result<(), StepError> {
        let dry = self.mode == Mode::DryRun;
        for (i, g) in cfg.passwd.groups.iter().enumerate() {
            if dry {
                let verb = if g.should_exist == Some(false) { "delete" } else { "add" };
                self.say(Stage::Files, format!("{verb} group {}", g.name));
                continue;
            }
            users::group(&self.root, &self.shadow, g).map_err(at(format!("$.passwd.groups.{i}")))?;
        }
        for (i, u) in cfg.passwd.users.iter().enumerate() {
            if dry {
                let verb = if u.should_exist == Some(false) {
                    "delete"
                } else {
                    "create or modify"
                };
                let mut line = format!("{verb} user {}", u.name);
                if !u.ssh_authorized_keys.is_empty() {
                    line.push_str(&format!(" with {} SSH key(s)", u.ssh_authorized_keys.len()));
                }
                self.say(Stage::Files, line);
                continue;
            }
            users::user(&self.root, &self.shadow, u, self.keys_file).map_err(at(format!("$.passwd.users.{i}")))?;
        }
        let plan = entries::plan(cfg, &self.root).map_err(|e| at(e.json_path.clone())(*e.source))?;
        let fetcher = self.fetcher_for(cfg)?;
        if dry {
            for e in &plan {
                let line = e.describe();
                self.say(Stage::Files, line);
            }
        } else {
            let owners = Owners::load(&self.root)?;
            let cx = Context {
                root: &self.root,
                fetcher: &fetcher,
                owners: &owners,
            };
            let threads = std::thread::available_parallelism()
                .map(|n| n.get().min(8))
                .unwrap_or(1);
            entries::apply_all(&plan, &cx, threads).map_err(|e| at(e.json_path.clone())(*e.source))?;
        }
        for (i, u) in cfg.systemd.units.iter().enumerate() {
            if dry {
                let mut what = Vec::new();
                if u.dropins.iter().any(|d| d.contents.is_some()) {
                    what.push(format!(
                        "{} drop-in(s)",
                        u.dropins.iter().filter(|d| d.contents.is_some()).count()
                    ));
                }
                if u.contents.as_deref().is_some_and(|c| !c.is_empty()) {
                    what.push("unit file".into());
                }
                match u.mask {
                    Some(true) => what.push("mask".into()),
                    Some(false) => what.push("unmask".into()),
                    None => {}
                }
                if !what.is_empty() {
                    self.say(Stage::Files, format!("unit {}: {}", u.name, what.join(", ")));
                }
                continue;
            }
            units::unit(&self.root, u).map_err(at(format!("$.systemd.units.{i}")))?;
        }
        if dry {
            for l in units::preset_lines(&cfg.systemd.units) {
                self.say(Stage::Files, format!("preset {l} in {}", units::PRESET_PATH));
            }
        } else {
            units::write_presets(&self.root, &cfg.systemd.units).map_err(at("$.systemd.units"))?;
        }
        let mut plan = Vec::new();
        let cx = StorageContext {
            config: cfg,
            root: self.root.base(),
            mode: self.mode,
            fetcher: &fetcher,
            run_dir: &self.run_dir,
        };
        let r = self.storage.files(&cx, &mut plan);
        for l in plan {
            self.say(Stage::Files, l);
        }
        r.map_err(|e| StepError {
            json_path: e.json_path.clone(),
            cause: chain(&e),
        })?;
        if dry {
            self.say(Stage::Files, format!("write result file {}", result::RESULT_FILE));
        }
        Ok(())
    }

    fn write_result(&self, state: &RunState) -> Result<(), StepError> {
        let path = self.root.join(result::RESULT_FILE).map_err(at("$"))?;
        let previous = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if previous.is_some() {
            tracing::warn!("boxcar-provision has already run on this system; it is designed to run once");
        }
        let r = ResultFile {
            provisioning_boot_id: result::boot_id(),
            provisioning_date: result::rfc3339(SystemTime::now()),
            user_config_provided: self
                .config
                .as_ref()
                .map(|c| c.user_config_provided)
                .unwrap_or(state.user_config_provided),
            stages: state.stages.clone(),
            previous_report: previous,
        };
        let mut data = serde_json::to_vec_pretty(&r).map_err(at("$"))?;
        data.push(b'\n');
        crate::fsops::mkdir_for_file(&path).map_err(at("$"))?;
        crate::fsops::write_replace(&path, &data).map_err(at("$"))?;
        crate::fsops::chmod(&path, 0o600).map_err(at("$"))?;
        Ok(())
    }
}

fn config_error(e: ConfigError) -> StepError {
    let json_path = match &e {
        ConfigError::Reference { what, .. } => what.split_whitespace().next().map(str::to_string),
        _ => None,
    };
    StepError {
        json_path,
        cause: chain(&e),
    }
}
