//! `boxcar update …`: the node's update agent (`boxcar-updated`) as the operator sees it,
//! over the daemon's local socket (newline-delimited JSON, `boxcar_agent::daemon::proto`).
//!
//! `status` prints what `update_engine_client -status` prints (or `--json` with everything);
//! `check` is `AttemptUpdate` (`--watch` follows it); `watch` shows a progress bar and the
//! state until the attempt settles; `reset` is `ResetStatus`; `rollback` makes the previous
//! version boot next.

use crate::exit;
use boxcar_agent::daemon::proto::{self, Method, Request, Response, StatusView};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// The daemon could not be reached or answered nonsense.
const UNREACHABLE: u8 = exit::IO;

/// The node's update agent: status, check, watch, reset, rollback.
#[derive(clap::Args)]
pub struct Args {
    /// boxcar-updated's API socket.
    #[arg(long, value_name = "PATH", env = "BOXCAR_UPDATED_SOCKET", default_value = boxcar_agent::daemon::DEFAULT_SOCKET, global = true)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Print LAST_CHECKED_TIME, PROGRESS, CURRENT_OP, NEW_VERSION, NEW_SIZE like
    /// `update_engine_client -status`.
    Status {
        /// Everything the daemon reports, as JSON (running version, errors, next check).
        #[arg(long)]
        json: bool,
    },
    /// Check for an update now (D-Bus AttemptUpdate); returns at once unless --watch.
    Check {
        /// Follow the attempt like `watch`; exit 1 if it fails.
        #[arg(long)]
        watch: bool,
    },
    /// Show the state and a progress bar until the attempt settles (idle or reboot needed);
    /// plain lines when not on a terminal. Exit 1 if it ended in an error.
    Watch,
    /// Forget a staged update: its slot is made unbootable again (D-Bus ResetStatus).
    Reset,
    /// Make the previous version boot next, on purpose (reboot to switch).
    Rollback,
}

/// Runs the command; returns the exit code.
pub fn run(args: Args) -> u8 {
    match execute(&args) {
        Ok(code) => code,
        Err(Failure::Unreachable(msg)) => {
            eprintln!("boxcar update: {msg}");
            UNREACHABLE
        }
        Err(Failure::Refused(msg)) => {
            eprintln!("boxcar update: {msg}");
            exit::INVALID
        }
    }
}

enum Failure {
    Unreachable(String),
    Refused(String),
}

struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    socket: PathBuf,
}

impl Conn {
    fn open(socket: &PathBuf) -> Result<Conn, Failure> {
        let s = UnixStream::connect(socket).map_err(|e| {
            Failure::Unreachable(format!(
                "cannot reach boxcar-updated at {}: {e} (is boxcar-updated.service running?)",
                socket.display()
            ))
        })?;
        let writer = s.try_clone().map_err(|e| Failure::Unreachable(e.to_string()))?;
        Ok(Conn {
            reader: BufReader::new(s),
            writer,
            socket: socket.clone(),
        })
    }

    fn send(&mut self, method: Method) -> Result<(), Failure> {
        let mut line = serde_json::to_vec(&Request::new(method)).map_err(|e| Failure::Unreachable(e.to_string()))?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .map_err(|e| Failure::Unreachable(format!("writing to {}: {e}", self.socket.display())))
    }

    /// The next response line; `None` when the daemon closed the connection.
    fn next(&mut self) -> Result<Option<Response>, Failure> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| Failure::Unreachable(format!("reading from {}: {e}", self.socket.display())))?;
        if n == 0 {
            return Ok(None);
        }
        let r: Response = serde_json::from_str(&line)
            .map_err(|e| Failure::Unreachable(format!("unreadable answer from boxcar-updated: {e}")))?;
        if r.v != proto::VERSION {
            return Err(Failure::Unreachable(format!(
                "boxcar-updated speaks protocol {}, this boxcar speaks {}",
                r.v,
                proto::VERSION
            )));
        }
        Ok(Some(r))
    }

    fn call(&mut self, method: Method) -> Result<Response, Failure> {
        self.send(method)?;
        let r = self
            .next()?
            .ok_or_else(|| Failure::Unreachable("boxcar-updated closed the connection".into()))?;
        match (&r.ok, &r.error) {
            (false, Some(e)) => Err(Failure::Refused(e.message.clone())),
            (false, None) => Err(Failure::Refused("refused without a reason".into())),
            _ => Ok(r),
        }
    }
}

fn status_of(r: Response) -> Result<StatusView, Failure> {
    r.status
        .ok_or_else(|| Failure::Unreachable("boxcar-updated answered without a status".into()))
}

fn execute(args: &Args) -> Result<u8, Failure> {
    match &args.command {
        Cmd::Status { json } => {
            let s = status_of(Conn::open(&args.socket)?.call(Method::Status)?)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                print!("{}", s.to_update_engine_lines());
            }
            Ok(exit::OK)
        }
        Cmd::Check { watch: false } => {
            let s = status_of(Conn::open(&args.socket)?.call(Method::Check)?)?;
            println!("update check started ({})", s.current_operation);
            Ok(exit::OK)
        }
        Cmd::Check { watch: true } => {
            // Subscribe first so no state of the attempt is missed.
            let mut w = Conn::open(&args.socket)?;
            w.send(Method::Watch)?;
            let first = w.next()?;
            Conn::open(&args.socket)?.call(Method::Check)?;
            follow(w, first, true)
        }
        Cmd::Watch => {
            let mut w = Conn::open(&args.socket)?;
            w.send(Method::Watch)?;
            let first = w.next()?;
            follow(w, first, false)
        }
        Cmd::Reset => {
            let s = status_of(Conn::open(&args.socket)?.call(Method::Reset)?)?;
            println!("status reset ({})", s.current_operation);
            Ok(exit::OK)
        }
        Cmd::Rollback => {
            let r = Conn::open(&args.socket)?.call(Method::Rollback)?;
            let v = r
                .rollback
                .ok_or_else(|| Failure::Unreachable("boxcar-updated answered without a version".into()))?;
            println!(
                "rollback: {} boots next; reboot to switch (the reboot flag is set)",
                v.version
            );
            Ok(exit::OK)
        }
    }
}

/// Prints the stream until the attempt settles. `started` = we asked for the check
/// ourselves, so an initial IDLE means "not begun yet", not "done".
fn follow(mut w: Conn, first: Option<Response>, started: bool) -> Result<u8, Failure> {
    let tty = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut printer = Printer::new(tty);
    let mut seen_attempt = false;
    let mut next = first;
    loop {
        let Some(r) = next else {
            printer.finish(&mut out);
            return Err(Failure::Unreachable("boxcar-updated stopped while watching".into()));
        };
        let s = status_of(r)?;
        if !s.is_settled() {
            seen_attempt = true;
        }
        printer.show(&mut out, &s);
        if s.is_settled() && (seen_attempt || !started) {
            printer.finish(&mut out);
            return Ok(match &s.last_error {
                Some(e) => {
                    let _ = writeln!(out, "error {} ({}): {}", e.code, e.name, e.message);
                    exit::INVALID
                }
                None => exit::OK,
            });
        }
        next = w.next()?;
    }
}

/// Renders status updates: one redrawn line on a terminal, plain lines otherwise (one per
/// state change and per 10 % of progress, so logs stay short).
struct Printer {
    tty: bool,
    last_op: String,
    last_decile: i64,
    drawn: bool,
}

impl Printer {
    fn new(tty: bool) -> Printer {
        Printer {
            tty,
            last_op: String::new(),
            last_decile: -1,
            drawn: false,
        }
    }

    fn show(&mut self, out: &mut impl Write, s: &StatusView) {
        if self.tty {
            let _ = write!(out, "\r\x1b[K{}", line(s, true));
            let _ = out.flush();
            self.drawn = true;
            return;
        }
        let decile = (s.progress * 10.0).floor() as i64;
        if s.current_operation != self.last_op || decile != self.last_decile {
            let _ = writeln!(out, "{}", line(s, false));
            self.last_op = s.current_operation.clone();
            self.last_decile = decile;
        }
    }

    fn finish(&mut self, out: &mut impl Write) {
        if self.tty && self.drawn {
            let _ = writeln!(out);
        }
    }
}

/// One status line: `[#####---------------]  25% UPDATE_STATUS_DOWNLOADING 2.0.0 (1.0/4.0 MiB)`
/// while downloading, else the state and the version.
pub fn line(s: &StatusView, tty: bool) -> String {
    let version = if s.new_version.is_empty() {
        String::new()
    } else {
        format!(" {}", s.new_version)
    };
    if s.current_operation.ends_with("_DOWNLOADING") {
        let bar = if tty {
            format!("{} ", bar(s.progress, 20))
        } else {
            String::new()
        };
        format!(
            "{bar}{:>3}% {}{version} ({}/{})",
            percent(s.progress),
            s.current_operation,
            mib(s.downloaded),
            mib(s.new_size)
        )
    } else {
        format!("{}{version}", s.current_operation)
    }
}

/// Whole percent, rounded down, clamped to 0–100: 0.999 → 99, 1.0 → 100.
pub fn percent(progress: f64) -> u32 {
    if progress.is_finite() {
        (progress.clamp(0.0, 1.0) * 100.0).floor() as u32
    } else {
        0
    }
}

/// A bar of `width` cells: `bar(0.25, 8)` = `[##------]`.
pub fn bar(progress: f64, width: usize) -> String {
    let filled = (percent(progress) as usize * width) / 100;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// Bytes as MiB with one decimal: 1_572_864 → `1.5 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(op: &str, progress: f64, done: u64, size: u64) -> StatusView {
        StatusView {
            last_checked_time: 1,
            progress,
            current_operation: op.into(),
            new_version: "2.0.0".into(),
            new_size: size,
            downloaded: done,
            running_version: "1.0.0".into(),
            reboot_needed: false,
            last_error: None,
            next_check_time: 0,
        }
    }

    #[test]
    fn bars_and_numbers() {
        assert_eq!(bar(0.25, 8), "[##------]");
        assert_eq!(bar(0.0, 4), "[----]");
        assert_eq!(bar(1.0, 4), "[####]");
        assert_eq!(bar(7.0, 4), "[####]", "clamped");
        assert_eq!(percent(0.999), 99);
        assert_eq!(percent(f64::NAN), 0);
        assert_eq!(mib(1_572_864), "1.5 MiB");
    }

    #[test]
    fn lines_for_tty_and_logs() {
        let d = view("UPDATE_STATUS_DOWNLOADING", 0.25, 1 << 20, 4 << 20);
        assert_eq!(
            line(&d, true),
            "[#####---------------]  25% UPDATE_STATUS_DOWNLOADING 2.0.0 (1.0 MiB/4.0 MiB)"
        );
        assert_eq!(
            line(&d, false),
            " 25% UPDATE_STATUS_DOWNLOADING 2.0.0 (1.0 MiB/4.0 MiB)"
        );
        let mut i = view("UPDATE_STATUS_IDLE", 0.0, 0, 0);
        i.new_version.clear();
        assert_eq!(line(&i, false), "UPDATE_STATUS_IDLE");
    }

    #[test]
    fn plain_output_prints_state_changes_and_deciles_only() {
        let mut p = Printer::new(false);
        let mut out = Vec::new();
        for (op, prog) in [
            ("UPDATE_STATUS_DOWNLOADING", 0.01),
            ("UPDATE_STATUS_DOWNLOADING", 0.05),
            ("UPDATE_STATUS_DOWNLOADING", 0.12),
            ("UPDATE_STATUS_DOWNLOADING", 0.13),
            ("UPDATE_STATUS_VERIFYING", 1.0),
        ] {
            p.show(&mut out, &view(op, prog, 0, 100));
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
    }
}
