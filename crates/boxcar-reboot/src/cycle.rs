//! The reboot cycle: window → nobody logged in and healthy → permission (lock) → pre-reboot
//! hooks → reboot; after the boot, release the lock once healthy (steady state).
//!
//! Every effect sits behind a trait so the same code runs on a node (`systemctl reboot`,
//! `loginctl`, a health command) and in tests (recorders), and [`Coordinator::attempt`] makes one
//! decision without sleeping.

use crate::strategy::{Permission, Strategy, StrategyError};
use crate::window::{Gate, Schedule};
use jiff::Timestamp;
use std::fmt;
use std::process::Command;
use std::time::Duration;

/// Reboots the machine.
pub trait Rebooter: Send + Sync {
    /// Starts the reboot; returns once it is under way.
    fn reboot(&self) -> Result<(), String>;
}

/// `systemctl reboot` (logind then shuts down cleanly, running the usual units).
pub struct SystemctlReboot;

impl Rebooter for SystemctlReboot {
    fn reboot(&self) -> Result<(), String> {
        run(&["systemctl", "reboot"]).map(|_| ())
    }
}

/// Who is logged in interactively.
pub trait Sessions: Send + Sync {
    /// User names with an interactive (TTY or seat) session.
    fn interactive_users(&self) -> Result<Vec<String>, String>;
}

/// Asks logind through `loginctl list-sessions`.
pub struct Loginctl;

impl Sessions for Loginctl {
    fn interactive_users(&self) -> Result<Vec<String>, String> {
        run(&["loginctl", "list-sessions", "--no-legend", "--no-pager"]).map(|out| parse_sessions(&out))
    }
}

/// Parses `loginctl list-sessions --no-legend`: `SESSION UID USER [SEAT] [TTY] ...`. A session
/// counts as interactive when it names a seat or a TTY (ssh logins get a `pts/N`); background
/// sessions (cron, `user@` managers) have neither.
pub fn parse_sessions(out: &str) -> Vec<String> {
    let mut users: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let user = f.get(2)?;
            let interactive = f[3..]
                .iter()
                .any(|x| x.starts_with("seat") || x.starts_with("tty") || x.starts_with("pts/"));
            interactive.then(|| user.to_string())
        })
        .collect();
    users.sort();
    users.dedup();
    users
}

/// Is the node healthy? Gates both the reboot (don't take a sick node down further) and the
/// release after boot (a node that came back sick keeps its slot, which halts the fleet's
/// rollout until someone looks).
pub trait HealthCheck: Send + Sync {
    /// `Err(reason)` when unhealthy.
    fn check(&self) -> Result<(), String>;
}

/// No health check configured.
pub struct AlwaysHealthy;

impl HealthCheck for AlwaysHealthy {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A command whose exit status 0 means healthy (e.g. `systemctl is-system-running --wait`).
pub struct CommandCheck(pub Vec<String>);

impl HealthCheck for CommandCheck {
    fn check(&self) -> Result<(), String> {
        let argv: Vec<&str> = self.0.iter().map(String::as_str).collect();
        run(&argv).map(|_| ())
    }
}

/// Something to do right before the reboot (drain, flush, notify).
pub trait PreRebootHook: Send + Sync {
    /// For messages.
    fn name(&self) -> String;
    /// Runs the hook; an error aborts this reboot attempt.
    fn run(&self) -> Result<(), String>;
}

/// A hook that runs a command.
pub struct CommandHook(pub Vec<String>);

impl PreRebootHook for CommandHook {
    fn name(&self) -> String {
        self.0.join(" ")
    }
    fn run(&self) -> Result<(), String> {
        let argv: Vec<&str> = self.0.iter().map(String::as_str).collect();
        run(&argv).map(|_| ())
    }
}

fn run(argv: &[&str]) -> Result<String, String> {
    let (cmd, args) = argv.split_first().ok_or("empty command")?;
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("running {}: {e}", argv.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why the reboot is not happening yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// Outside every maintenance window.
    OutsideWindow {
        /// The next opening.
        opens: Option<Timestamp>,
    },
    /// Interactive users are logged in.
    UsersLoggedIn(Vec<String>),
    /// Logged-in users could not be determined (treated as "someone might be").
    SessionsUnknown(String),
    /// The health check fails.
    Unhealthy(String),
    /// The lock is busy.
    LockBusy(String),
    /// The lock server failed; no permission without it.
    LockUnreachable(String),
    /// The window closed while waiting for the lock; the lock was given back.
    WindowClosed,
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::OutsideWindow { opens: Some(t) } => {
                write!(f, "outside the maintenance windows; next window opens at {t}")
            }
            WaitReason::OutsideWindow { opens: None } => write!(f, "outside the maintenance windows"),
            WaitReason::UsersLoggedIn(u) => {
                write!(f, "reboot delayed: users logged in: {}", u.join(", "))
            }
            WaitReason::SessionsUnknown(e) => {
                write!(f, "reboot delayed: cannot tell who is logged in: {e}")
            }
            WaitReason::Unhealthy(e) => write!(f, "reboot delayed: health check failing: {e}"),
            WaitReason::LockBusy(e) => write!(f, "waiting for a reboot slot: {e}"),
            WaitReason::LockUnreachable(e) => {
                write!(f, "waiting: no reboot permission while the lock is unreachable: {e}")
            }
            WaitReason::WindowClosed => {
                write!(f, "the window closed before the lock was obtained; lock released")
            }
        }
    }
}

/// Result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The reboot was started.
    Rebooted,
    /// kured (or similar) will reboot the node.
    HandedOff(String),
    /// Strategy `off`.
    Disabled,
    /// Not yet.
    Wait(WaitReason),
}

/// State after boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steady {
    /// Healthy; the lock was released.
    Released,
    /// Unhealthy; the lock is kept so the fleet stops rebooting into a bad version.
    HoldingUnhealthy(String),
}

/// An attempt that failed after permission was granted.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// A pre-reboot hook failed; the lock was released.
    #[error("pre-reboot hook {name} failed (reboot aborted, lock released): {message}")]
    Hook {
        /// The hook.
        name: String,
        /// Its error.
        message: String,
    },
    /// The reboot command failed; the lock was released.
    #[error("starting the reboot failed (lock released): {0}")]
    Reboot(String),
    /// Releasing the lock failed.
    #[error("releasing the reboot lock: {0}")]
    Release(#[source] StrategyError),
}

/// Drives one node's reboot.
pub struct Coordinator<'a> {
    /// The strategy.
    pub strategy: &'a dyn Strategy,
    /// Maintenance windows.
    pub schedule: &'a Schedule,
    /// How to reboot.
    pub rebooter: &'a dyn Rebooter,
    /// Who is logged in.
    pub sessions: &'a dyn Sessions,
    /// Health check.
    pub health: &'a dyn HealthCheck,
    /// Hooks run after the lock is taken, before rebooting.
    pub hooks: &'a [Box<dyn PreRebootHook + 'a>],
    /// The clock (injectable for window tests).
    pub clock: &'a (dyn Fn() -> Timestamp + Sync),
}

impl Coordinator<'_> {
    /// One decision: reboot now, or why not. Never sleeps.
    pub fn attempt(&self) -> Result<Outcome, CycleError> {
        use crate::config::StrategyKind;
        if self.strategy.kind() == StrategyKind::Off {
            return Ok(Outcome::Disabled);
        }
        // kured has its own window (--start-time/--end-time); ours gate the other strategies.
        let windowed = self.strategy.kind() != StrategyKind::Kured;
        if windowed {
            if let Gate::Closed { opens } = self.schedule.gate((self.clock)()) {
                return Ok(Outcome::Wait(WaitReason::OutsideWindow { opens }));
            }
        }
        if let Some(wait) = self.precheck() {
            return Ok(Outcome::Wait(wait));
        }
        match self.strategy.request() {
            Ok(Permission::Granted) => {}
            Ok(Permission::Wait(m)) => return Ok(Outcome::Wait(WaitReason::LockBusy(m))),
            Ok(Permission::HandedOff(m)) => return Ok(Outcome::HandedOff(m)),
            Ok(Permission::Never) => return Ok(Outcome::Disabled),
            Err(e) => return Ok(Outcome::Wait(WaitReason::LockUnreachable(e.to_string()))),
        }
        // Taking the lock may have taken long; don't start a reboot after the window closed.
        if windowed && matches!(self.schedule.gate((self.clock)()), Gate::Closed { .. }) {
            self.give_back();
            return Ok(Outcome::Wait(WaitReason::WindowClosed));
        }
        for hook in self.hooks {
            if let Err(message) = hook.run() {
                self.give_back();
                return Err(CycleError::Hook {
                    name: hook.name(),
                    message,
                });
            }
        }
        tracing::info!(strategy = %self.strategy.kind(), "rebooting");
        if let Err(e) = self.rebooter.reboot() {
            self.give_back();
            return Err(CycleError::Reboot(e));
        }
        Ok(Outcome::Rebooted)
    }

    fn precheck(&self) -> Option<WaitReason> {
        match self.sessions.interactive_users() {
            Ok(u) if !u.is_empty() => return Some(WaitReason::UsersLoggedIn(u)),
            Ok(_) => {}
            Err(e) => return Some(WaitReason::SessionsUnknown(e)),
        }
        self.health.check().err().map(WaitReason::Unhealthy)
    }

    fn give_back(&self) {
        if let Err(e) = self.strategy.release() {
            tracing::error!(error = %e, "releasing the reboot lock after an aborted attempt");
        }
    }

    /// After boot: release the lock if healthy, else keep it.
    pub fn after_boot(&self) -> Result<Steady, CycleError> {
        if let Err(e) = self.health.check() {
            tracing::warn!(reason = %e, "node unhealthy after boot; keeping the reboot lock");
            return Ok(Steady::HoldingUnhealthy(e));
        }
        self.strategy.release().map_err(CycleError::Release)?;
        Ok(Steady::Released)
    }

    /// Repeats [`Self::attempt`] until it is no longer a wait, logging each new reason once.
    /// Sleeps `poll` between attempts (or until the next window, if that comes first).
    pub fn run(&self, poll: Duration, sleep: &dyn Fn(Duration)) -> Result<Outcome, CycleError> {
        let mut last: Option<WaitReason> = None;
        loop {
            match self.attempt()? {
                Outcome::Wait(reason) => {
                    if last.as_ref() != Some(&reason) {
                        tracing::info!("{reason}");
                    }
                    let mut pause = poll;
                    if let WaitReason::OutsideWindow { opens: Some(t) } = &reason {
                        let until = t.duration_since((self.clock)());
                        if let Ok(d) = Duration::try_from(until) {
                            pause = pause.min(d.max(Duration::from_secs(1)));
                        }
                    }
                    last = Some(reason);
                    sleep(pause);
                }
                done => return Ok(done),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StrategyKind;
    use crate::strategy::Immediate;
    use crate::window::Window;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Records calls; the scripted strategy answers from a list.
    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);
    impl Log {
        fn push(&self, s: &str) {
            self.0.lock().unwrap().push(s.into());
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }
    struct Rec<'a>(&'a Log);
    impl Rebooter for Rec<'_> {
        fn reboot(&self) -> Result<(), String> {
            self.0.push("reboot");
            Ok(())
        }
    }
    struct Users(Vec<String>);
    impl Sessions for Users {
        fn interactive_users(&self) -> Result<Vec<String>, String> {
            Ok(self.0.clone())
        }
    }
    struct Health(Result<(), String>);
    impl HealthCheck for Health {
        fn check(&self) -> Result<(), String> {
            self.0.clone()
        }
    }
    struct Hook<'a>(&'a Log, Result<(), String>);
    impl PreRebootHook for Hook<'_> {
        fn name(&self) -> String {
            "drain".into()
        }
        fn run(&self) -> Result<(), String> {
            self.0.push("hook");
            self.1.clone()
        }
    }
    struct Lock<'a>(&'a Log, Permission);
    impl Strategy for Lock<'_> {
        fn kind(&self) -> StrategyKind {
            StrategyKind::EtcdLock
        }
        fn request(&self) -> Result<Permission, StrategyError> {
            self.0.push("lock");
            Ok(self.1.clone())
        }
        fn release(&self) -> Result<(), StrategyError> {
            self.0.push("unlock");
            Ok(())
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn coordinator<'a>(
        strategy: &'a dyn Strategy,
        schedule: &'a Schedule,
        rebooter: &'a Rec<'a>,
        users: &'a Users,
        health: &'a Health,
        hooks: &'a [Box<dyn PreRebootHook + 'a>],
        clock: &'a (dyn Fn() -> Timestamp + Sync),
    ) -> Coordinator<'a> {
        Coordinator {
            strategy,
            schedule,
            rebooter,
            sessions: users,
            health,
            hooks,
            clock,
        }
    }

    #[test]
    fn full_cycle_in_order() {
        let log = Log::default();
        let rec = Rec(&log);
        let lock = Lock(&log, Permission::Granted);
        let sched = Schedule::always();
        let users = Users(vec![]);
        let ok = Health(Ok(()));
        let hooks: Vec<Box<dyn PreRebootHook + '_>> = vec![Box::new(Hook(&log, Ok(())))];
        let clock = || ts("2024-01-01T00:00:00Z");
        let c = coordinator(&lock, &sched, &rec, &users, &ok, &hooks, &clock);
        assert_eq!(c.attempt().unwrap(), Outcome::Rebooted);
        assert_eq!(log.take(), ["lock", "hook", "reboot"]);
        assert_eq!(c.after_boot().unwrap(), Steady::Released);
        assert_eq!(log.take(), ["unlock"]);
    }

    #[test]
    fn users_and_health_delay_before_locking() {
        let log = Log::default();
        let rec = Rec(&log);
        let lock = Lock(&log, Permission::Granted);
        let sched = Schedule::always();
        let users = Users(vec!["core".into()]);
        let ok = Health(Ok(()));
        let clock = || ts("2024-01-01T00:00:00Z");
        let c = coordinator(&lock, &sched, &rec, &users, &ok, &[], &clock);
        let out = c.attempt().unwrap();
        assert_eq!(out, Outcome::Wait(WaitReason::UsersLoggedIn(vec!["core".into()])));
        let Outcome::Wait(r) = out else { unreachable!() };
        assert_eq!(r.to_string(), "reboot delayed: users logged in: core");
        assert!(log.take().is_empty(), "no lock taken while users are logged in");

        let nobody = Users(vec![]);
        let sick = Health(Err("etcd member unhealthy".into()));
        let c = coordinator(&lock, &sched, &rec, &nobody, &sick, &[], &clock);
        let Outcome::Wait(r) = c.attempt().unwrap() else {
            panic!()
        };
        assert_eq!(
            r.to_string(),
            "reboot delayed: health check failing: etcd member unhealthy"
        );
        assert_eq!(
            c.after_boot().unwrap(),
            Steady::HoldingUnhealthy("etcd member unhealthy".into())
        );
        assert!(log.take().is_empty(), "an unhealthy node neither locks nor releases");
    }

    #[test]
    fn failing_hook_releases_the_lock() {
        let log = Log::default();
        let rec = Rec(&log);
        let lock = Lock(&log, Permission::Granted);
        let sched = Schedule::always();
        let users = Users(vec![]);
        let ok = Health(Ok(()));
        let hooks: Vec<Box<dyn PreRebootHook + '_>> = vec![Box::new(Hook(&log, Err("drain timed out".into())))];
        let clock = || ts("2024-01-01T00:00:00Z");
        let c = coordinator(&lock, &sched, &rec, &users, &ok, &hooks, &clock);
        let e = c.attempt().unwrap_err();
        assert!(e.to_string().contains("drain timed out"));
        assert_eq!(log.take(), ["lock", "hook", "unlock"]);
    }

    #[test]
    fn windows_gate_locks_and_closing_window_gives_lock_back() {
        let log = Log::default();
        let rec = Rec(&log);
        let lock = Lock(&log, Permission::Granted);
        let sched = Schedule {
            windows: vec![Window::parse("Mon 04:00 1h").unwrap()],
            ..Schedule::always()
        };
        let users = Users(vec![]);
        let ok = Health(Ok(()));
        // 2024-01-01 is a Monday. 03:00: closed, next opening at 04:00.
        let clock = || ts("2024-01-01T03:00:00Z");
        let c = coordinator(&lock, &sched, &rec, &users, &ok, &[], &clock);
        assert_eq!(
            c.attempt().unwrap(),
            Outcome::Wait(WaitReason::OutsideWindow {
                opens: Some(ts("2024-01-01T04:00:00Z"))
            })
        );
        assert!(log.take().is_empty());
        // The clock reads 04:59 at the check and 05:00 after the lock was granted.
        let calls = AtomicUsize::new(0);
        let clock = || {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                ts("2024-01-01T04:59:00Z")
            } else {
                ts("2024-01-01T05:00:00Z")
            }
        };
        let c = coordinator(&lock, &sched, &rec, &users, &ok, &[], &clock);
        assert_eq!(c.attempt().unwrap(), Outcome::Wait(WaitReason::WindowClosed));
        assert_eq!(log.take(), ["lock", "unlock"]);
    }

    #[test]
    fn busy_lock_waits_and_off_never_reboots() {
        let log = Log::default();
        let rec = Rec(&log);
        let lock = Lock(&log, Permission::Wait("held by a, b".into()));
        let sched = Schedule::always();
        let users = Users(vec![]);
        let ok = Health(Ok(()));
        let clock = || ts("2024-01-01T00:00:00Z");
        let c = coordinator(&lock, &sched, &rec, &users, &ok, &[], &clock);
        assert_eq!(
            c.attempt().unwrap(),
            Outcome::Wait(WaitReason::LockBusy("held by a, b".into()))
        );
        assert!(!log.take().contains(&"reboot".to_string()));
        let off = crate::strategy::Off;
        let c = coordinator(&off, &sched, &rec, &users, &ok, &[], &clock);
        assert_eq!(c.attempt().unwrap(), Outcome::Disabled);
        let imm = Immediate(StrategyKind::Reboot);
        let c = coordinator(&imm, &sched, &rec, &users, &ok, &[], &clock);
        assert_eq!(c.attempt().unwrap(), Outcome::Rebooted);
        assert_eq!(log.take(), ["reboot"]);
    }

    #[test]
    fn run_loops_until_permitted() {
        struct Turns<'a>(&'a Log, AtomicUsize);
        impl Strategy for Turns<'_> {
            fn kind(&self) -> StrategyKind {
                StrategyKind::FleetLock
            }
            fn request(&self) -> Result<Permission, StrategyError> {
                self.0.push("lock");
                Ok(if self.1.fetch_add(1, Ordering::SeqCst) < 2 {
                    Permission::Wait("full".into())
                } else {
                    Permission::Granted
                })
            }
            fn release(&self) -> Result<(), StrategyError> {
                Ok(())
            }
        }
        let log = Log::default();
        let rec = Rec(&log);
        let s = Turns(&log, AtomicUsize::new(0));
        let sched = Schedule::always();
        let users = Users(vec![]);
        let ok = Health(Ok(()));
        let clock = || ts("2024-01-01T00:00:00Z");
        let c = coordinator(&s, &sched, &rec, &users, &ok, &[], &clock);
        let sleeps = Mutex::new(Vec::new());
        let out = c
            .run(Duration::from_secs(60), &|d| sleeps.lock().unwrap().push(d))
            .unwrap();
        assert_eq!(out, Outcome::Rebooted);
        assert_eq!(log.take(), ["lock", "lock", "lock", "reboot"]);
        assert_eq!(sleeps.lock().unwrap().len(), 2);
    }

    #[test]
    fn kured_ignores_our_windows_and_lock_errors_never_reboot() {
        let log = Log::default();
        let rec = Rec(&log);
        let dir = tempfile::tempdir().unwrap();
        let kured = crate::strategy::Kured {
            sentinel: dir.path().join("reboot-required"),
        };
        let sched = Schedule {
            windows: vec![Window::parse("Mon 04:00 1h").unwrap()],
            ..Schedule::always()
        };
        let users = Users(vec![]);
        let ok = Health(Ok(()));
        let clock = || ts("2024-01-01T12:00:00Z");
        let c = coordinator(&kured, &sched, &rec, &users, &ok, &[], &clock);
        assert!(matches!(c.attempt().unwrap(), Outcome::HandedOff(_)));
        assert!(dir.path().join("reboot-required").exists());
        assert!(log.take().is_empty(), "kured reboots, not us");

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let fl = crate::strategy::FleetLockStrategy(crate::fleetlock::FleetLockClient::new(
            &format!("http://127.0.0.1:{port}"),
            "n1",
            "default",
            Duration::from_secs(2),
        ));
        let always = Schedule::always();
        let c = coordinator(&fl, &always, &rec, &users, &ok, &[], &clock);
        let Outcome::Wait(r @ WaitReason::LockUnreachable(_)) = c.attempt().unwrap() else {
            panic!("an unreachable lock server must mean wait");
        };
        assert!(
            r.to_string()
                .starts_with("waiting: no reboot permission while the lock is unreachable: FleetLock pre-reboot"),
            "{r}"
        );
        assert!(log.take().is_empty());
    }

    #[test]
    fn loginctl_output() {
        let out = "     1 1000 core  seat0 tty1 active no -\n    c3  500 core  -     pts/0 active no -\n     \
                   5    0 root  -     -    active no -\n  7 1001 alice - pts/3\n";
        assert_eq!(parse_sessions(out), ["alice", "core"]);
        assert!(parse_sessions("").is_empty());
        assert!(parse_sessions("x\n1 2\n").is_empty());
    }
}
