//! A minimal QMP client (QEMU Machine Protocol, JSON lines over a Unix
//! socket): enough to ask for an ACPI power-down or quit.

use crate::error::{Result, TestbedError};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A connected QMP session in command mode.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

fn qerr(command: &str, cause: impl ToString) -> TestbedError {
    TestbedError::Qmp {
        command: command.into(),
        cause: cause.to_string(),
    }
}

impl Qmp {
    /// Connects (waiting up to `timeout` for QEMU to create the socket),
    /// reads the greeting and enters command mode.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if start.elapsed() >= timeout => {
                    return Err(qerr("connect", format!("{}: {e}", path.display())))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| qerr("connect", e))?;
        let writer = stream.try_clone().map_err(|e| qerr("connect", e))?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.read_message("greeting")?;
        if greeting.get("QMP").is_none() {
            return Err(qerr("greeting", format!("unexpected {greeting}")));
        }
        q.execute("qmp_capabilities")?;
        Ok(q)
    }

    fn read_message(&mut self, command: &str) -> Result<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(|e| qerr(command, e))?;
        if n == 0 {
            return Err(qerr(command, "QEMU closed the QMP socket"));
        }
        serde_json::from_str(&line).map_err(|e| qerr(command, format!("bad reply {line:?}: {e}")))
    }

    /// Runs a command without arguments; returns its `return` value.
    /// Events arriving meanwhile are skipped.
    pub fn execute(&mut self, command: &str) -> Result<Value> {
        let msg = json!({ "execute": command }).to_string() + "\n";
        self.writer.write_all(msg.as_bytes()).map_err(|e| qerr(command, e))?;
        loop {
            let v = self.read_message(command)?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(qerr(command, e));
            }
        }
    }
}
