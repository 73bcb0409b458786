//! One stage run: the caller's [`Context`], the growing [`Report`], and the
//! single place where "apply" and "dry run" differ.

use crate::cmd::{Cmd, CmdError};
use crate::device::{self, WaitError};
use crate::error::DisksError;
use crate::{Context, Mode, Report};

/// One planned or performed step, for the report and for `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Operation {
    /// JSON path of the config entry this step serves.
    pub config_path: String,
    /// What the step does, in words.
    pub description: String,
    /// The command line, when the step is a command (never holds secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.config_path, self.description)?;
        if let Some(c) = &self.command {
            write!(f, "\n    $ {c}")?;
        }
        Ok(())
    }
}

pub(crate) struct Run<'c, 'k> {
    pub ctx: &'c Context<'k>,
    pub report: Report,
}

impl<'c, 'k> Run<'c, 'k> {
    pub fn new(ctx: &'c Context<'k>) -> Self {
        Run {
            ctx,
            report: Report {
                mode: ctx.mode,
                ..Default::default()
            },
        }
    }

    pub fn applying(&self) -> bool {
        self.ctx.mode == Mode::Apply
    }

    /// Records a decision that needs no command.
    pub fn note(&mut self, path: &str, description: String) {
        tracing::info!(config_path = path, "{description}");
        self.report.operations.push(Operation {
            config_path: path.to_string(),
            description,
            command: None,
        });
    }

    /// Records `cmd` and, when applying, runs it.
    pub fn exec(&mut self, path: &str, description: String, cmd: Cmd) -> Result<String, CmdError> {
        let command = cmd.to_string();
        match self.ctx.mode {
            Mode::Apply => tracing::info!(config_path = path, command, "{description}"),
            Mode::DryRun => tracing::info!(config_path = path, command, "would {description}"),
        }
        self.report.operations.push(Operation {
            config_path: path.to_string(),
            description,
            command: Some(command),
        });
        match self.ctx.mode {
            Mode::Apply => cmd.run(),
            Mode::DryRun => Ok(String::new()),
        }
    }

    /// Waits for a device the config names and returns its canonical path.
    pub fn wait_device(&self, path: &str, device: &str) -> Result<String, DisksError> {
        device::wait_for(device, self.ctx.device_timeout).map_err(|e| match e {
            WaitError::Timeout => DisksError::DeviceTimeout {
                path: path.to_string(),
                device: device.to_string(),
                timeout_secs: self.ctx.device_timeout.as_secs(),
            },
            WaitError::Other(reason) => DisksError::ResolveDevice {
                path: path.to_string(),
                device: device.to_string(),
                reason,
            },
        })
    }

    /// Like [`Run::wait_device`] when applying. In a dry run a device that
    /// an earlier planned step would create may not exist yet: `None`.
    pub fn device_or_planned(&self, path: &str, device: &str) -> Result<Option<String>, DisksError> {
        match self.ctx.mode {
            Mode::Apply => self.wait_device(path, device).map(Some),
            Mode::DryRun => Ok(device::resolve_now(device)),
        }
    }
}
