//! Starting, watching and stopping one QEMU guest.
//!
//! Everything a run writes (serial log, QEMU command line, stdout/stderr,
//! the OVMF vars copy, the Ignition config) goes to the test's artefact
//! directory, `<target>/test-artefacts/testbed/<test>/`. It is removed when
//! the [`Vm`] is dropped normally and kept when the test is panicking, so a
//! failed run leaves its logs behind. QEMU is killed on drop.

use crate::error::{Result, TestbedError};
use crate::exit::{decode, Exit};
use crate::serial::{tail, LogCursor};
use crate::{qmp::Qmp, tool};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Serialises VMs within a test process: the host has 2 cores and a TCG
/// guest keeps one busy.
static VM_LOCK: Mutex<()> = Mutex::new(());

/// One VM at a time on the host: the process-wide mutex, then an exclusive
/// `flock` on `<cache>/vm.lock`, so test processes run in parallel (e.g.
/// by nextest) still take turns. The kernel drops the file lock if the
/// process dies.
pub(crate) struct VmLock {
    _file: Option<std::fs::File>,
    _guard: MutexGuard<'static, ()>,
}

impl std::fmt::Debug for VmLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VmLock")
    }
}

/// Takes the VM lock (a panicking earlier test does not poison it for the
/// rest). Without a writable cache dir only the in-process lock is taken.
pub(crate) fn lock() -> VmLock {
    let guard = VM_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = crate::paths::cache_dir();
    let file = std::fs::create_dir_all(&dir).ok().and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("vm.lock"))
            .ok()
    });
    if let Some(f) = &file {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; blocks until granted.
        while unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break;
            }
        }
    }
    VmLock {
        _file: file,
        _guard: guard,
    }
}

const TAIL_LINES: usize = 40;

/// A running (or exited) guest. See the module docs for artefacts.
#[derive(Debug)]
pub struct Vm {
    name: String,
    dir: PathBuf,
    work: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
    cursor: LogCursor,
    /// Lines read from the log but not yet scanned by a `wait_for`.
    unread: VecDeque<String>,
    ports: BTreeMap<u16, u16>,
    exit: Option<Exit>,
    runs: u32,
    /// When the current QEMU process was started.
    started: Instant,
    _guard: VmLock,
}

impl Vm {
    /// Starts the first QEMU run of a VM whose command line is built.
    pub(crate) fn launch(
        name: String,
        dir: PathBuf,
        work: tempfile::TempDir,
        args: Vec<String>,
        ports: BTreeMap<u16, u16>,
        guard: VmLock,
    ) -> Result<Vm> {
        let mut vm = Vm {
            name,
            dir,
            work,
            args,
            child: None,
            cursor: LogCursor::at(0),
            unread: VecDeque::new(),
            ports,
            exit: None,
            runs: 0,
            started: Instant::now(),
            _guard: guard,
        };
        vm.spawn()?;
        Ok(vm)
    }

    fn spawn(&mut self) -> Result<()> {
        self.runs += 1;
        let qemu = "qemu-system-x86_64";
        let mut cmd = Command::new(qemu);
        cmd.args(&self.args);
        let line = tool::describe(&cmd);
        let cmdline = self.dir.join("qemu.cmdline");
        let prev = std::fs::read_to_string(&cmdline).unwrap_or_default();
        std::fs::write(&cmdline, format!("{prev}# run {}\n{line}\n", self.runs))
            .map_err(TestbedError::io("writing", &cmdline))?;
        let out = |n: &str| {
            let p = self.dir.join(n);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(TestbedError::io("creating", p))
        };
        let (stdout, stderr) = (out("qemu.stdout")?, out("qemu.stderr")?);
        tracing::info!(vm = %self.name, run = self.runs, "starting QEMU");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| TestbedError::Spawn {
                tool: qemu.into(),
                source,
            })?;
        self.child = Some(child);
        self.started = Instant::now();
        self.exit = None;
        Ok(())
    }

    /// The serial console log (all runs of this VM, appended).
    pub fn serial_log(&self) -> PathBuf {
        self.dir.join("serial.log")
    }

    /// The qcow2 overlay of disk `index` (0 = `/dev/vda`) when it was added
    /// with [`DiskMode::Overlay`]: where the guest's writes went. Read it
    /// back with `qemu-img convert` after power-off.
    pub fn overlay(&self, index: usize) -> Option<PathBuf> {
        let p = self.work.path().join(format!("disk{index}.qcow2"));
        p.is_file().then_some(p)
    }

    /// Waits until QEMU answers on QMP, i.e. its set-up (incl. host port
    /// forwards) is done. A forward whose host port was taken meanwhile
    /// gives [`TestbedError::PortTaken`].
    pub(crate) fn await_setup(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let sock = self.work.path().join("qmp.sock");
        loop {
            if Qmp::connect(&sock, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            if let Some(e) = self.poll_exit()? {
                let stderr = self.stderr_text();
                return Err(if stderr.contains("host forwarding") {
                    TestbedError::PortTaken(stderr.trim().to_string())
                } else {
                    TestbedError::Qmp {
                        command: "start".into(),
                        cause: format!("QEMU exited during set-up: {e:?}"),
                    }
                });
            }
            if start.elapsed() >= timeout {
                return Err(TestbedError::Qmp {
                    command: "start".into(),
                    cause: format!("no QMP greeting within {} s", timeout.as_secs()),
                });
            }
        }
    }

    /// Time since the current QEMU process started (boot timings).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// This VM's artefact directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The VM's copy of the OVMF vars (UEFI boots only).
    pub fn vars_file(&self) -> Option<PathBuf> {
        let p = self.dir.join("OVMF_VARS.fd");
        p.is_file().then_some(p)
    }

    /// Host port forwarded to `guest_port` (declared with
    /// [`VmBuilder::forward`]).
    pub fn host_port(&self, guest_port: u16) -> Option<u16> {
        self.ports.get(&guest_port).copied()
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("qemu.stderr")).unwrap_or_default()
    }

    /// Records and returns the exit if QEMU has ended.
    fn poll_exit(&mut self) -> Result<Option<Exit>> {
        if let Some(e) = &self.exit {
            return Ok(Some(e.clone()));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child
            .try_wait()
            .map_err(TestbedError::io("waiting for", "qemu-system-x86_64"))?;
        Ok(status.map(|s| {
            let e = decode(s.code(), &self.stderr_text());
            tracing::info!(vm = %self.name, exit = ?e, "QEMU exited");
            self.exit = Some(e.clone());
            e
        }))
    }

    /// Waits until a console line contains `marker` and returns that line.
    /// Lines are consumed: the next call scans from the line after it.
    /// Fails with the log tail on timeout or when QEMU exits first.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<String> {
        self.wait_for_any(&[marker], timeout).map(|(_, line)| line)
    }

    /// Like [`Vm::wait_for`] for the first line containing any of
    /// `markers` (e.g. a success and a failure marker); returns which one
    /// (its index) and the line.
    pub fn wait_for_any(&mut self, markers: &[&str], timeout: Duration) -> Result<(usize, String)> {
        let start = Instant::now();
        let log = self.serial_log();
        let find = |line: &str| markers.iter().position(|m| line.contains(m));
        loop {
            let exited = self.poll_exit()?;
            let new = self.cursor.poll(&log)?;
            self.unread.extend(new);
            while let Some(line) = self.unread.pop_front() {
                if let Some(i) = find(&line) {
                    tracing::debug!(vm = %self.name, %line, secs = start.elapsed().as_secs_f64(), "marker");
                    return Ok((i, line));
                }
            }
            let why = match exited {
                Some(e) => match find(&self.cursor.pending()) {
                    Some(i) => return Ok((i, self.cursor.pending())),
                    None => format!("QEMU exited: {e:?}"),
                },
                None if start.elapsed() >= timeout => "timeout".into(),
                None => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            return Err(TestbedError::MarkerTimeout {
                marker: markers.join(" | "),
                secs: timeout.as_secs(),
                why,
                tail: tail(&log, TAIL_LINES),
                log,
            });
        }
    }

    /// Waits for QEMU to exit by itself (guest verdict or power-off).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Exit> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.poll_exit()? {
                return Ok(e);
            }
            if start.elapsed() >= timeout {
                return Err(TestbedError::ExitTimeout {
                    secs: timeout.as_secs(),
                    log: self.serial_log(),
                    tail: tail(&self.serial_log(), TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clean shutdown: QMP `system_powerdown` (ACPI button), then `quit`
    /// if the guest has not powered off within `grace`, then kill.
    pub fn powerdown(&mut self, grace: Duration) -> Result<Exit> {
        if let Some(e) = self.poll_exit()? {
            return Ok(e);
        }
        let sock = self.work.path().join("qmp.sock");
        let mut qmp = Qmp::connect(&sock, Duration::from_secs(10))?;
        qmp.execute("system_powerdown")?;
        if let Ok(e) = self.wait_exit(grace) {
            return Ok(e);
        }
        tracing::info!(vm = %self.name, "guest ignored power-down; QMP quit");
        let _ = qmp.execute("quit");
        match self.wait_exit(Duration::from_secs(10)) {
            Ok(e) => Ok(e),
            Err(_) => {
                self.kill();
                self.wait_exit(Duration::from_secs(10))
            }
        }
    }

    /// Starts QEMU again with the same disks, overlays and OVMF vars after
    /// it exited: a reboot of the same machine. The serial log continues.
    pub fn restart(&mut self) -> Result<()> {
        if self.poll_exit()?.is_none() {
            return Err(TestbedError::Invalid {
                what: "restart",
                cause: format!("VM {} is still running; power it down first", self.name),
            });
        }
        self.spawn()
    }

    /// Kills QEMU (SIGKILL) if it is running.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("testbed: VM {} failed; logs kept in {}", self.name, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_lock_from_another_process() -> bool {
        let file = crate::paths::cache_dir().join("vm.lock");
        Command::new("flock")
            .args(["--nonblock", "--exclusive"])
            .arg(&file)
            .arg("true")
            .status()
            .expect("flock(1) from util-linux")
            .success()
    }

    #[test]
    fn vm_lock_excludes_other_processes_until_dropped() {
        let held = lock();
        assert!(!try_lock_from_another_process(), "lock not held across processes");
        drop(held);
        assert!(try_lock_from_another_process(), "lock not released on drop");
    }
}
