//! The executor around [`Machine`]: one worker thread runs checks and staging, every
//! transition goes through the machine's guards, and the effects it returns are carried out
//! in order (Omaha events with bounded retries, `/run/reboot-required`, un-staging, watcher
//! notifications). API and D-Bus threads only ask; they never block on the network.

use super::config::{AgentConfig, Server};
use super::http::OmahaHttp;
use super::identity::{self, Identity, IdentityFiles};
use super::marker::{self, StagedMarker};
use super::omaha::{self, codes, Answer, Params, Source};
use super::proto::{ErrorKind, LastError, StatusView};
use super::schedule::{self, Jitter, Timing};
use crate::stager::{Offer, Stager};
use crate::state::{Effect, ErrorCode, Event, Machine, Refused, State};
use crate::{after_boot, BootHealth, BootReport};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Everything about the runner that is not in update.conf (paths and knobs, so tests can run
/// it unprivileged in a temp dir).
#[derive(Debug, Clone)]
pub struct Options {
    /// Identity files (os-release, machine-id, boot id, oem-release).
    pub identity: IdentityFiles,
    /// The file touched when a reboot is needed (what kured and `boxcar reboot run` watch).
    pub reboot_required: PathBuf,
    /// Directory for the daemon's own state (the staged marker).
    pub state_dir: PathBuf,
    /// Check timing.
    pub timing: Timing,
    /// Whole-request timeout of each Omaha request.
    pub http_timeout: Duration,
    /// Largest payload accepted; bigger offers fail with PayloadSizeMismatch before any download.
    pub max_payload: u64,
    /// Attempts per Omaha event report before giving up on it.
    pub event_attempts: u32,
    /// Pause between event attempts.
    pub event_retry: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            identity: IdentityFiles::default(),
            reboot_required: "/run/reboot-required".into(),
            state_dir: "/var/lib/boxcar/updated".into(),
            timing: Timing::default(),
            http_timeout: Duration::from_secs(60),
            max_payload: 8 << 30,
            event_attempts: 3,
            event_retry: Duration::from_secs(5),
        }
    }
}

/// Why the runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The node's identity files.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The staging engine could not say what booted.
    #[error("reading the boot status from the staging engine: {0}")]
    BootStatus(String),
    /// The state directory.
    #[error("{0}")]
    State(String),
}

/// An API-level refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Category.
    pub kind: ErrorKind,
    /// Explanation.
    pub message: String,
}

fn refusal(kind: ErrorKind, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        message: message.into(),
    }
}

impl From<Refused> for Refusal {
    fn from(r: Refused) -> Refusal {
        let kind = match r {
            Refused::AlreadyUpdated => ErrorKind::AlreadyUpdated,
            Refused::Busy => ErrorKind::Busy,
            _ => ErrorKind::InvalidState,
        };
        refusal(kind, r.to_string())
    }
}

struct Inner {
    machine: Machine,
    last_checked: i64,
    last_error: Option<LastError>,
    /// Event for the next update check: the boot report until the server has it.
    boot_event: Option<boxcar_omaha::Event>,
    /// The boot report is a success that waits for this boot to be marked good
    /// (`BootHealth::OnTrial` at start): until then checks carry a plain ping.
    report_after_blessing: bool,
    /// A check was asked for (API/D-Bus); the worker picks it up.
    requested: Option<Source>,
    /// Last progress percentage announced and when: during a download, watchers hear of
    /// every whole percent and at least every 10 s (update_engine's rule).
    announced_percent: i64,
    announced_at: Instant,
    /// Size of the update being handled (for the staged marker).
    offer_size: u64,
    /// Unix time of the next scheduled check (0 = none).
    next_check: i64,
    /// Consecutive failed checks (the backoff exponent).
    failures: u32,
}

/// The running agent. Cheap to share (`Arc`); [`Agent::shutdown`] stops the worker.
pub struct Agent {
    inner: Mutex<Inner>,
    /// Held from a transition until its effects are carried out, so transitions and their
    /// effects never interleave (a ResetStatus cannot slip between "UPDATED_NEED_REBOOT" and
    /// the touch of the reboot flag). `status()` does not take it.
    step: Mutex<()>,
    wake: Condvar,
    stager: Arc<dyn Stager>,
    config: AgentConfig,
    options: Options,
    identity: Identity,
    params: Params,
    http: Option<OmahaHttp>,
    subscribers: Mutex<Vec<mpsc::Sender<StatusView>>>,
    stop: AtomicBool,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn last_error(code: ErrorCode, message: &str) -> LastError {
    LastError {
        code: code.0,
        name: boxcar_omaha::error_code_name(code.0),
        message: message.to_string(),
    }
}

impl Agent {
    /// Reads the identity and the boot status, decides what to report about the last boot, and
    /// starts the worker (first check after `timing.initial`).
    pub fn start(config: AgentConfig, options: Options, stager: Arc<dyn Stager>) -> Result<Arc<Agent>, StartError> {
        let identity = identity::read_identity(&options.identity, config.version_override.as_deref())?;
        let boot = stager.boot_status().map_err(|e| StartError::BootStatus(e.message))?;
        let marker_path = options.state_dir.join(marker::FILE);
        let staged = marker::read(&marker_path).map_err(StartError::State)?;
        let mut report_after_blessing = false;
        let (machine, boot_event) = match staged {
            // Same boot: the daemon restarted while the update waits for its reboot.
            Some(m) if m.boot_id == identity.boot_id => {
                tracing::info!(version = %m.version, "update staged earlier in this boot; waiting for the reboot");
                (Machine::staged(m.version, m.size), None)
            }
            other => {
                // The version we came from, for `previousversion` (update_engine's pref).
                let from_version = other.as_ref().map(|m| m.from_version.clone());
                if other.is_some() {
                    marker::remove(&marker_path).map_err(StartError::State)?;
                }
                let report = after_boot(boot.pending.as_ref(), &boot.running_version);
                let ev = match &report {
                    BootReport::Nothing => None,
                    BootReport::Succeeded { version } => {
                        if boot.health == BootHealth::OnTrial {
                            tracing::info!(%version, "the staged update booted and is on trial; success is reported once this boot is marked good");
                            report_after_blessing = true;
                        } else {
                            tracing::info!(%version, "the staged update booted; reporting success to the server");
                        }
                        // Never empty or 0.0.0.0: servers read those as a plain heartbeat.
                        let prev = from_version
                            .filter(|v| !v.is_empty())
                            .unwrap_or_else(|| "unknown".into());
                        Some(boxcar_omaha::Event {
                            event_type: boxcar_omaha::EventType::UpdateComplete,
                            event_result: boxcar_omaha::EventResult::SuccessReboot,
                            error_code: None,
                            previous_version: Some(prev),
                        })
                    }
                    BootReport::RolledBack { wanted, running } => {
                        tracing::warn!(%wanted, %running, "rollback: the staged update did not stay booted; reporting error 44");
                        Some(omaha::event(
                            boxcar_omaha::EventType::UpdateComplete,
                            boxcar_omaha::EventResult::Error,
                            Some(crate::boot::ROLLBACK_ERROR),
                        ))
                    }
                };
                (Machine::default(), ev)
            }
        };
        let http = match &config.server {
            Server::Url(u) => Some(OmahaHttp::new(u, options.http_timeout)),
            Server::Disabled => {
                tracing::info!("SERVER=disabled: update checks are off");
                None
            }
            Server::Unset => {
                tracing::warn!("no SERVER in update.conf: update checks are off");
                None
            }
        };
        let params = Params {
            app_id: config.app_id.clone(),
            track: config.group.clone(),
            board: config.board.clone(),
            machine_alias: config.machine_alias.clone(),
        };
        let offer_size = machine.status().new_size;
        let agent = Arc::new(Agent {
            inner: Mutex::new(Inner {
                machine,
                last_checked: 0,
                last_error: None,
                boot_event,
                report_after_blessing,
                requested: None,
                announced_percent: -1,
                announced_at: Instant::now(),
                offer_size,
                next_check: 0,
                failures: 0,
            }),
            step: Mutex::new(()),
            wake: Condvar::new(),
            stager,
            config,
            options,
            identity,
            params,
            http,
            subscribers: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            worker: Mutex::new(None),
        });
        let a = agent.clone();
        let handle = std::thread::Builder::new()
            .name("boxcar-updated-worker".into())
            .spawn(move || a.worker_loop())
            .map_err(|e| StartError::State(format!("starting the worker thread: {e}")))?;
        *agent.worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(agent)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn step(&self) -> MutexGuard<'_, ()> {
        self.step.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status as the API and D-Bus show it.
    pub fn status(&self) -> StatusView {
        let g = self.lock();
        self.view(&g)
    }

    fn view(&self, g: &Inner) -> StatusView {
        let mut v = StatusView::from_status(
            g.machine.status(),
            g.last_checked,
            &self.identity.version,
            g.last_error.clone(),
        );
        v.next_check_time = g.next_check;
        v
    }

    /// The config in force.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// A channel that receives the status after every change (until the agent stops).
    pub fn subscribe(&self) -> mpsc::Receiver<StatusView> {
        let (tx, rx) = mpsc::channel();
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    /// Whether [`Agent::shutdown`] was called.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// `AttemptUpdate`: start a check now. Refused while busy, with an update staged, or with
    /// checks switched off.
    pub fn request_check(&self) -> Result<StatusView, Refusal> {
        if self.http.is_none() {
            return Err(refusal(
                ErrorKind::Disabled,
                "update checks are off (SERVER=disabled or no SERVER in update.conf)",
            ));
        }
        let _step = self.step();
        let effects = {
            let mut g = self.lock();
            let effects = g.machine.handle(Event::CheckRequested)?;
            g.requested = Some(Source::OnDemand);
            g.last_error = None;
            effects
        };
        self.wake.notify_all();
        self.run_effects(effects);
        Ok(self.status())
    }

    /// `ResetStatus`: forget a staged update (the slot is made unbootable again).
    pub fn reset(&self) -> Result<StatusView, Refusal> {
        let _step = self.step();
        let effects = {
            let mut g = self.lock();
            let effects = g.machine.handle(Event::ResetRequested)?;
            g.last_error = None;
            effects
        };
        if effects.contains(&Effect::UnstageSlot) {
            let _ = marker::remove(&self.options.state_dir.join(marker::FILE));
            if let Err(e) = std::fs::remove_file(&self.options.reboot_required) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.options.reboot_required.display(), error = %e, "removing the reboot flag");
                }
            }
        }
        self.run_effects(effects);
        Ok(self.status())
    }

    /// Makes the previous version boot next, on purpose; returns that version. Only when idle:
    /// with an update staged the "other slot" is the new one (reset first).
    pub fn rollback(&self) -> Result<String, Refusal> {
        let _step = self.step();
        {
            let g = self.lock();
            match g.machine.status().state {
                State::Idle => {}
                State::UpdatedNeedReboot => {
                    return Err(refusal(
                        ErrorKind::AlreadyUpdated,
                        "an update is staged; `boxcar update reset` (ResetStatus) first, then roll back",
                    ))
                }
                s => {
                    return Err(refusal(
                        ErrorKind::Busy,
                        format!("an update attempt is under way ({})", s.dbus_name()),
                    ))
                }
            }
        }
        let version = self
            .stager
            .rollback()
            .map_err(|e| refusal(ErrorKind::Stager, format!("rollback failed: {}", e.message)))?;
        self.touch_reboot_required();
        tracing::info!(%version, "rollback: the previous version boots next");
        Ok(version)
    }

    /// Stops the worker (cancelling a download) and waits for it.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_all();
        let handle = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    // ---- worker ----

    fn worker_loop(self: Arc<Self>) {
        let mut jitter = Jitter::from_entropy();
        let mut due = self.schedule(schedule::first_delay(&self.options.timing, jitter.sample()));
        loop {
            let source = {
                let mut g = self.lock();
                loop {
                    if self.stopping() {
                        return;
                    }
                    if let Some(s) = g.requested.take() {
                        break Some(s);
                    }
                    let now = Instant::now();
                    if now >= due {
                        break None;
                    }
                    g = self
                        .wake
                        .wait_timeout(g, due - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            };
            let outcome = match source {
                Some(s) => self.attempt(s),
                None => self.scheduled(),
            };
            let failures = {
                let mut g = self.lock();
                match outcome {
                    Outcome::Good { .. } => g.failures = 0,
                    Outcome::ServerFailed => g.failures = g.failures.saturating_add(1),
                    Outcome::Skipped => {}
                }
                g.failures
            };
            let poll_interval = match outcome {
                Outcome::Good { poll_interval } => poll_interval,
                _ => None,
            };
            let delay = schedule::next_delay(&self.options.timing, failures, poll_interval, jitter.sample());
            due = self.schedule(delay);
        }
    }

    /// Records when the next check is due (for the status) and returns the instant.
    fn schedule(&self, delay: Duration) -> Instant {
        let mut g = self.lock();
        g.next_check = if self.http.is_some() {
            now_unix().saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX / 2))
        } else {
            0
        };
        let now = Instant::now();
        // A "never" delay (check-once) must not overflow the clock.
        now.checked_add(delay)
            .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 86_400))
    }

    /// A timer tick: a check, or a ping while an update waits for its reboot.
    fn scheduled(&self) -> Outcome {
        let Some(http) = &self.http else {
            return Outcome::Skipped;
        };
        let state = self.lock().machine.status().state;
        if state == State::UpdatedNeedReboot {
            let xml = omaha::ping_request(&self.identity, &self.params).to_xml();
            return match http.post(&xml).and_then(|b| omaha::ack_ok(&b)) {
                Ok(()) => Outcome::Good { poll_interval: None },
                Err(e) => {
                    tracing::warn!(error = %e, "ping failed");
                    Outcome::ServerFailed
                }
            };
        }
        let step = self.step();
        let effects = {
            let mut g = self.lock();
            match g.machine.handle(Event::CheckRequested) {
                Ok(e) => {
                    g.last_error = None;
                    e
                }
                Err(r) => {
                    tracing::debug!(reason = %r, "scheduled check skipped");
                    return Outcome::Skipped;
                }
            }
        };
        self.run_effects(effects);
        drop(step);
        self.attempt(Source::Scheduler)
    }

    /// One update attempt; the machine is in CHECKING_FOR_UPDATE.
    fn attempt(&self, source: Source) -> Outcome {
        let Some(http) = &self.http else {
            self.fail(codes::OMAHA_REQUEST_ERROR, "update checks are off");
            return Outcome::Skipped;
        };
        let boot_event = {
            let mut g = self.lock();
            g.last_checked = now_unix();
            g.boot_event.clone()
        };
        let boot_event = boot_event.filter(|_| self.boot_report_due());
        let sent_boot_report = boot_event.is_some();
        let ev = boot_event.unwrap_or_else(omaha::heartbeat);
        let xml = omaha::check_request(&self.identity, &self.params, source, ev).to_xml();
        tracing::info!(server = %http.url(), ?source, "checking for an update");
        let answer = http.post(&xml).and_then(|b| omaha::interpret(&b, &self.params.app_id));
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(code = e.code.0, error = %e, "update check failed");
                self.fail(e.code, &e.message);
                return Outcome::ServerFailed;
            }
        };
        if sent_boot_report {
            self.lock().boot_event = None;
            if let Err(e) = self.stager.clear_pending() {
                tracing::error!(error = %e, "the server has the boot report, but the pending update could not be cleared");
            }
        }
        let poll_interval = answer.poll_interval;
        match answer.answer {
            Answer::NoUpdate => {
                tracing::info!("no update");
                self.apply(Event::NoUpdate);
            }
            Answer::Offer(offer) if self.on_trial() => {
                // The other slot holds what this boot falls back to if its trial fails;
                // staging over it now would leave nothing good to return to.
                tracing::info!(
                    version = %offer.version,
                    "update offered, but this boot is still on trial (not marked good): the other slot is the fallback, so nothing is staged until this boot is marked good"
                );
                self.apply(Event::NoUpdate);
            }
            Answer::Offer(offer) => self.stage(offer),
        }
        Outcome::Good { poll_interval }
    }

    /// Whether the running boot is still on trial. An unreadable boot status does not hold the
    /// update back: staging reads the same partition table and reports its own error.
    fn on_trial(&self) -> bool {
        match self.stager.boot_status() {
            Ok(b) => b.health == BootHealth::OnTrial,
            Err(e) => {
                tracing::warn!(error = %e, "reading the boot status before staging");
                false
            }
        }
    }

    /// Whether the boot report may go out now: always, except a success while this boot is
    /// still on trial (re-read at every check, so the report follows `mark-good`).
    fn boot_report_due(&self) -> bool {
        if !self.lock().report_after_blessing {
            return true;
        }
        match self.stager.boot_status() {
            Ok(b) if b.health != BootHealth::OnTrial => {
                tracing::info!("this boot was marked good; reporting the update's success");
                self.lock().report_after_blessing = false;
                true
            }
            Ok(_) => {
                tracing::info!(
                    "this boot is still on trial (not marked good): the update's success is not reported yet"
                );
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the boot status; the update's success is not reported yet");
                false
            }
        }
    }

    fn stage(&self, offer: Offer) {
        tracing::info!(version = %offer.version, size = offer.size, url = %offer.url, "update offered");
        if !self.apply(Event::UpdateFound {
            version: offer.version.clone(),
            size: offer.size,
        }) {
            self.fail(codes::RESPONSE_INVALID, "the offer has no version or a zero size");
            return;
        }
        self.lock().offer_size = offer.size;
        if offer.size > self.options.max_payload {
            let msg = format!(
                "the offered payload is {} bytes, more than the {} this node accepts; not downloaded",
                offer.size, self.options.max_payload
            );
            tracing::error!("{msg}");
            self.fail(codes::PAYLOAD_SIZE_MISMATCH, &msg);
            return;
        }
        self.apply(Event::DownloadStarted);
        let cancel = AtomicBool::new(false);
        let mut on_progress = |done: u64| {
            if self.stopping() {
                cancel.store(true, Ordering::SeqCst);
                return;
            }
            let state = self.lock().machine.status().state;
            if state != State::Downloading {
                return;
            }
            if !self.apply(Event::Progress { done }) {
                tracing::error!(
                    done,
                    size = offer.size,
                    "the download went beyond the announced size; cancelling"
                );
                cancel.store(true, Ordering::SeqCst);
                return;
            }
            if done == offer.size {
                self.apply(Event::DownloadFinished);
            }
        };
        let result = self.stager.stage(&offer, &mut on_progress, &cancel);
        match result {
            Ok(staged) => {
                if self.lock().machine.status().state == State::Downloading {
                    self.apply(Event::Progress { done: offer.size });
                    self.apply(Event::DownloadFinished);
                }
                if cancel.load(Ordering::SeqCst) {
                    self.fail(ErrorCode(9), "staging was cancelled but the stager reported success");
                    return;
                }
                self.apply(Event::VerifyPassed);
                let m = StagedMarker {
                    version: staged.version.clone(),
                    size: offer.size,
                    boot_id: self.identity.boot_id.clone(),
                    from_version: self.identity.version.clone(),
                };
                if let Err(e) = marker::write(&self.options.state_dir.join(marker::FILE), &m) {
                    tracing::error!(error = %e, "writing the staged marker (a daemon restart before the reboot will not remember the update)");
                }
                self.apply(Event::Finalized);
                tracing::info!(version = %staged.version, slot = %staged.slot, "update staged; reboot needed");
            }
            Err(f) => {
                tracing::error!(code = f.code.0, error = %f.message, "staging failed");
                self.fail(f.code, &f.message);
            }
        }
    }

    /// Records a failure, reports it (3/0/code) and returns to IDLE.
    fn fail(&self, code: ErrorCode, message: &str) {
        self.lock().last_error = Some(last_error(code, message));
        if self.apply(Event::Failed { code }) {
            self.apply(Event::ErrorReported);
        }
    }

    /// Applies an event and runs its effects; false when the machine refused it.
    fn apply(&self, ev: Event) -> bool {
        let _step = self.step();
        let effects = {
            let mut g = self.lock();
            match g.machine.handle(ev.clone()) {
                Ok(e) => e,
                Err(r) => {
                    tracing::debug!(event = ?ev, reason = %r, "event refused by the state machine");
                    return false;
                }
            }
        };
        self.run_effects(effects);
        true
    }

    fn run_effects(&self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::OmahaEvent {
                    event_type,
                    result,
                    error_code,
                } => self.send_event(omaha::event(event_type, result, error_code)),
                Effect::SignalRebootNeeded => self.touch_reboot_required(),
                Effect::UnstageSlot => {
                    if let Err(e) = self.stager.unstage() {
                        tracing::error!(error = %e, "un-staging the update");
                    }
                }
                Effect::StatusChanged => self.notify(),
            }
        }
    }

    /// Sends an event report, retried a few times; never blocks the machine for longer than
    /// `event_attempts × (http_timeout + event_retry)`.
    fn send_event(&self, ev: boxcar_omaha::Event) {
        let Some(http) = &self.http else { return };
        let xml = omaha::event_request(&self.identity, &self.params, ev.clone()).to_xml();
        for attempt in 1..=self.options.event_attempts.max(1) {
            match http.post(&xml).and_then(|b| omaha::ack_ok(&b)) {
                Ok(()) => {
                    tracing::debug!(
                        event_type = ev.event_type.code(),
                        result = ev.event_result.code(),
                        "event reported"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(attempt, event_type = ev.event_type.code(), error = %e, "event report failed");
                    if self.stopping() {
                        return;
                    }
                    if attempt < self.options.event_attempts {
                        std::thread::sleep(self.options.event_retry);
                    }
                }
            }
        }
        tracing::error!(
            event_type = ev.event_type.code(),
            result = ev.event_result.code(),
            "giving up on the event report"
        );
    }

    fn touch_reboot_required(&self) {
        let p = &self.options.reboot_required;
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
            tracing::error!(path = %p.display(), error = %e, "touching the reboot flag");
        }
    }

    fn notify(&self) {
        let view = {
            let mut g = self.lock();
            let st = g.machine.status();
            if st.state == State::Downloading {
                let pct = (st.progress * 100.0).floor() as i64;
                if pct == g.announced_percent && g.announced_at.elapsed() < Duration::from_secs(10) {
                    return;
                }
                // The journal hears of every tenth percent (watchers of every percent).
                if pct / 10 != g.announced_percent.max(0) / 10 || g.announced_percent < 0 {
                    tracing::info!(
                        version = st.new_version.as_deref().unwrap_or(""),
                        "downloading and writing the update: {pct} %"
                    );
                }
                g.announced_percent = pct;
            } else {
                g.announced_percent = -1;
            }
            g.announced_at = Instant::now();
            self.view(&g)
        };
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|tx| tx.send(view.clone()).is_ok());
    }
}

/// How a worker round went, for the schedule.
enum Outcome {
    /// The server answered usefully.
    Good { poll_interval: Option<u32> },
    /// Unreachable, HTTP error, garbage: back off.
    ServerFailed,
    /// Nothing was sent.
    Skipped,
}
