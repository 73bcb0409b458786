//! Assembling the final config: base configs (`base.d/*.ign`, sorted by
//! name, merged in order), the user config from the first provider that
//! has one, and `ignition.config.replace`/`merge` references followed
//! depth-first, with boxcar-config's parser and merge rules.

use crate::error::{ConfigError, FetchError};
use crate::fetch::{redact, Fetcher, Purpose};
use crate::provider::ConfigProvider;
use boxcar_config::model::Config;
use boxcar_config::{ignition, merge, Strictness};
use std::path::Path;

/// References deeper than this are refused (a loop or an attack).
pub const MAX_DEPTH: usize = 10;

/// The assembled config and where it came from.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub config: Config,
    /// Whether a provider supplied a user config (Ignition's
    /// `userConfigProvided`).
    pub user_config_provided: bool,
    /// Human-readable origins, secrets redacted.
    pub sources: Vec<String>,
}

/// Parse config bytes; warnings are logged, errors returned with the full
/// report (JSON paths and positions).
pub fn parse(bytes: &[u8], origin: &str) -> Result<Config, ConfigError> {
    match ignition::parse(bytes, Strictness::Lenient) {
        Ok(p) => {
            for d in &p.report.entries {
                tracing::warn!(origin, "{d}");
            }
            Ok(p.config)
        }
        Err(report) => Err(ConfigError::Invalid {
            origin: origin.to_string(),
            report: report.to_string(),
        }),
    }
}

/// Follow `replace` and `merge` references of `cfg`, depth-first.
pub fn render(cfg: Config, fetcher: &Fetcher, depth: usize) -> Result<Config, ConfigError> {
    if depth > MAX_DEPTH {
        return Err(ConfigError::TooDeep(MAX_DEPTH));
    }
    // The referencing config's timeouts, proxy and CAs apply to its children.
    let f = Fetcher::for_config(fetcher, &cfg).map_err(|source| ConfigError::Reference {
        what: "certificate authorities".into(),
        source,
    })?;
    if cfg.ignition.config.replace.source.is_some() {
        let r = &cfg.ignition.config.replace;
        let child = fetch_child(&f, r, "$.ignition.config.replace")?;
        return render(child, &f, depth + 1);
    }
    let mut out = cfg.clone();
    for (i, r) in cfg.ignition.config.merge.iter().enumerate() {
        let child = fetch_child(&f, r, &format!("$.ignition.config.merge.{i}"))?;
        let child = render(child, &f, depth + 1)?;
        out = merge::merge(&out, &child);
    }
    Ok(out)
}

fn fetch_child(f: &Fetcher, r: &boxcar_config::model::Resource, json_path: &str) -> Result<Config, ConfigError> {
    let shown = redact(r.source.as_deref().unwrap_or(""));
    let what = format!("{json_path} ({shown})");
    let bytes = f.fetch(r, Purpose::Config).map_err(|source| ConfigError::Reference {
        what: what.clone(),
        source,
    })?;
    parse(&bytes, &what)
}

/// Read and merge `dir/*.ign` in name order; a missing dir is no base.
pub fn base_configs(dir: &Path, fetcher: &Fetcher) -> Result<Option<Config>, ConfigError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::BaseDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ign"))
        .collect();
    names.sort();
    let mut acc: Option<Config> = None;
    for p in names {
        let bytes = std::fs::read(&p).map_err(|source| ConfigError::BaseDir {
            path: p.clone(),
            source,
        })?;
        let cfg = render(parse(&bytes, &p.display().to_string())?, fetcher, 0)?;
        acc = Some(match acc {
            None => cfg,
            Some(a) => merge::merge(&a, &cfg),
        });
    }
    Ok(acc)
}

/// Find the user config (first provider with one), render it and merge it
/// over the base configs.
pub fn assemble(
    providers: &[Box<dyn ConfigProvider>],
    base_dir: Option<&Path>,
    fetcher: &Fetcher,
) -> Result<Assembled, ConfigError> {
    let mut sources = Vec::new();
    let base = match base_dir {
        Some(d) => base_configs(d, fetcher)?,
        None => None,
    };
    if base.is_some() {
        sources.push(format!(
            "base configs in {}",
            base_dir.map(|d| d.display().to_string()).unwrap_or_default()
        ));
    }
    let mut user = None;
    for p in providers {
        match p.fetch(fetcher)? {
            Some(bytes) => {
                let name = p.name();
                tracing::info!(provider = name, bytes = bytes.len(), "fetched user config");
                user = Some(render(parse(&bytes, &name)?, fetcher, 0)?);
                sources.push(name);
                break;
            }
            None => tracing::info!(provider = p.name(), "no config from this provider"),
        }
    }
    let user_config_provided = user.is_some();
    let config = match (base, user) {
        (Some(b), Some(u)) => merge::merge(&b, &u),
        (Some(b), None) => b,
        (None, Some(u)) => u,
        (None, None) => parse(br#"{"ignition":{"version":"3.4.0"}}"#, "empty config")?,
    };
    Ok(Assembled {
        config,
        user_config_provided,
        sources,
    })
}

/// Whether `err` only says the network is needed (fetch-offline then
/// defers to the fetch stage instead of failing).
pub fn is_needs_network(err: &ConfigError) -> bool {
    matches!(
        err,
        ConfigError::ProviderFetch {
            source: FetchError::NeedsNetwork { .. },
            ..
        } | ConfigError::Reference {
            source: FetchError::NeedsNetwork { .. },
            ..
        }
    ) || matches!(err, ConfigError::Reference { source: FetchError::CertificateAuthority { reason, .. }, .. } if reason.contains("needs the network"))
}
