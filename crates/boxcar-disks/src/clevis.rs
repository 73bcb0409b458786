//! Clevis bindings for LUKS volumes (tang servers, TPM2, custom pins),
//! with the pin configuration Ignition generates.

use crate::cmd::Cmd;
use crate::error::DisksError;
use crate::run::Run;
use boxcar_config::model::{Clevis, Luks, Resource};

/// Whether the entry asks for a clevis binding (Ignition's IsPresent).
pub fn clevis_present(c: &Clevis) -> bool {
    c.tpm2 == Some(true) || !c.tang.is_empty() || c.custom.pin.as_deref().is_some_and(|p| !p.is_empty())
}

pub(crate) fn needs_network(c: &Clevis) -> bool {
    !c.tang.is_empty()
        || (c.custom.pin.as_deref().is_some_and(|p| !p.is_empty()) && c.custom.needs_network == Some(true))
}

/// The clevis pin and its JSON config: the custom pin as given, else an
/// `sss` pin over the tang servers and tpm2 with threshold `t` (default 1).
pub fn clevis_config(c: &Clevis) -> Result<(String, String), String> {
    if let Some(pin) = c.custom.pin.as_deref().filter(|p| !p.is_empty()) {
        return Ok((pin.to_string(), c.custom.config.clone().unwrap_or_default()));
    }
    let mut tang = Vec::new();
    for t in &c.tang {
        let mut o = serde_json::Map::new();
        o.insert("url".into(), t.url.clone().into());
        if let Some(thp) = t.thumbprint.as_deref().filter(|s| !s.is_empty()) {
            o.insert("thp".into(), thp.into());
        }
        if let Some(adv) = t.advertisement.as_deref().filter(|s| !s.is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(adv).map_err(|e| format!("tang advertisement for {} is not JSON: {e}", t.url))?;
            o.insert("adv".into(), v);
        }
        tang.push(serde_json::Value::Object(o));
    }
    let mut pins = serde_json::Map::new();
    if c.tpm2 == Some(true) {
        if !tang.is_empty() {
            pins.insert("tang".into(), tang.into());
        }
        pins.insert("tpm2".into(), serde_json::json!({}));
    } else {
        pins.insert("tang".into(), tang.into());
    }
    let cfg = serde_json::json!({ "pins": pins, "t": c.threshold.unwrap_or(1) });
    Ok(("sss".into(), cfg.to_string()))
}

pub(crate) fn bind(
    run: &mut Run,
    path: &str,
    luks: &Luks,
    dev: &str,
    kp: &str,
    pin: &str,
    config: &str,
) -> Result<(), DisksError> {
    let err = |source| DisksError::Clevis {
        path: path.to_string(),
        name: luks.name.clone(),
        source,
    };
    // Without an advertisement clevis must reach each tang server; fetching
    // it first goes through the caller's fetcher and its retries.
    for t in luks
        .clevis
        .tang
        .iter()
        .filter(|t| t.advertisement.as_deref().is_none_or(str::is_empty))
    {
        let adv = Resource {
            source: Some(format!("{}/adv", t.url.trim_end_matches('/'))),
            ..Default::default()
        };
        run.ctx.key_source.fetch(&adv).map_err(|e| DisksError::LuksSpec {
            path: path.to_string(),
            name: luks.name.clone(),
            reason: format!("fetching tang advertisement from {}: {e}", t.url),
        })?;
    }
    let bind = Cmd::new("clevis").args(["luks", "bind", "-f", "-k", kp, "-d", dev, pin, config]);
    run.exec(path, format!("bind {dev} to clevis pin {pin}"), bind)
        .map_err(err)?;
    let close = Cmd::new("cryptsetup").args(["luksClose", &luks.name]);
    run.exec(path, format!("close {}", luks.name), close).map_err(err)?;
    let unlock = Cmd::new("clevis").args(["luks", "unlock", "-d", dev, "-n", &luks.name]);
    run.exec(path, format!("reopen {} through clevis", luks.name), unlock)
        .map_err(err)?;
    Ok(())
}
