//! Reading Ignition JSON: parse, decode strictly for the declared version,
//! validate, and upgrade to the internal model.

use crate::decode::{self, Decoder, ScalarRules, VersionLabel};
use crate::json;
use crate::model::Config;
use crate::path::Path;
use crate::report::{PathNaming, Report, Strictness};
use crate::tree::{Node, Value};
use crate::validate;
use crate::version::SpecVersion;

/// Configs larger than this are refused before parsing (Ignition configs
/// are kilobytes; a multi-megabyte one is a mistake or an attack).
pub const MAX_CONFIG_BYTES: usize = 64 << 20;

/// A config that passed validation.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Upgraded to [`SpecVersion::LATEST`].
    pub config: Config,
    /// The version the input declared.
    pub source_version: SpecVersion,
    /// Warnings (and infos); never errors.
    pub report: Report,
}

/// Read the declared version, reporting Ignition's errors if it is missing
/// or unsupported.
pub fn declared_version(tree: &Node, r: &mut Report) -> Option<SpecVersion> {
    let vpath = Path::root().keys(&["ignition", "version"]);
    let v = tree.get("ignition").and_then(|i| i.get("version"));
    match v.map(|n| &n.value) {
        Some(Value::Str(s)) => match SpecVersion::parse(s) {
            Ok(v) => Some(v),
            Err(e) => {
                let d = r.error(vpath, e.to_string());
                d.help = Some(format!(
                    "supported versions are {}",
                    SpecVersion::ALL.map(|v| v.as_str()).join(", ")
                ));
                None
            }
        },
        Some(other) => {
            r.error(vpath, format!("expected a string, found {}", other.kind()));
            None
        }
        None => {
            let d = r.error(vpath, "invalid config version (couldn't parse)");
            d.help = Some("every config needs \"ignition\": {\"version\": \"3.4.0\"}".into());
            None
        }
    }
}

/// Decode and validate a positioned tree as an Ignition config of its
/// declared version. The report is correlated against `tree` with `naming`.
pub fn from_tree(
    tree: &Node,
    rules: ScalarRules,
    naming: PathNaming,
    label: Option<VersionLabel>,
) -> (Option<(Config, SpecVersion)>, Report) {
    let mut r = Report::new();
    if !matches!(tree.value, Value::Map(_)) {
        r.error(Path::root(), format!("expected an object, found {}", tree.value.kind()));
        r.correlate(tree, naming);
        return (None, r);
    }
    let Some(version) = declared_version(tree, &mut r) else {
        r.correlate(tree, naming);
        return (None, r);
    };
    let cfg = {
        let mut d = Decoder::new(version, rules, &mut r);
        if let Some(l) = label {
            d.label = l;
        }
        decode::config(&mut d, tree)
    };
    r.merge(validate::validate(&cfg, version));
    r.correlate(tree, naming);
    r.sort();
    (Some((cfg, version)), r)
}

/// Parse, validate and upgrade an Ignition config. On failure the report
/// holds at least one error (or a warning, in strict mode).
pub fn parse(input: &[u8], strictness: Strictness) -> Result<Parsed, Report> {
    let mut r = Report::new();
    if input.len() > MAX_CONFIG_BYTES {
        r.error(Path::root(), format!("config is larger than {MAX_CONFIG_BYTES} bytes"));
        return Err(r);
    }
    let tree = match json::parse(input) {
        Ok(t) => t,
        Err(e) => {
            let d = r.error(Path::root(), e.message.clone());
            d.pos = Some(e.pos);
            return Err(r);
        }
    };
    let (parsed, report) = from_tree(&tree, ScalarRules::Json, PathNaming::Json, None);
    match parsed {
        Some((mut config, source_version)) if !report.is_fatal(strictness) => {
            config.ignition.version = SpecVersion::LATEST.as_str().to_string();
            Ok(Parsed {
                config,
                source_version,
                report,
            })
        }
        _ => Err(report),
    }
}
