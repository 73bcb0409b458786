//! `boxcar fleet …`: the update server's admin API from the command line, for automation.
//!
//! Everything the dashboard does is here: apps, channels, packages (publish), promotion, groups
//! and their rollout policies, pause/resume, instance search, activity. The token comes from
//! `BOXCAR_TOKEN` (or `--token`) and is never printed.

use crate::exit;
use serde_json::{json, Value};

/// Manage a Boxcar update server (apps, channels, packages, groups, policies, instances).
#[derive(clap::Args)]
pub struct Args {
    /// Base URL of the server.
    #[arg(long, env = "BOXCAR_SERVER", default_value = "http://127.0.0.1:8000")]
    server: String,
    /// API token (admin for changes, read-only for queries).
    #[arg(long, env = "BOXCAR_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the server's JSON as is instead of tables (times stay unix seconds there; tables
    /// show them as RFC 3339 UTC, e.g. 2026-11-22T19:30:00Z).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// List applications.
    Apps,
    /// Create an application (gets channels alpha, beta, stable, lts).
    CreateApp {
        /// Omaha app id (a UUID; braces optional).
        #[arg(long)]
        id: String,
        /// Short name usable instead of the id.
        #[arg(long)]
        name: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List channels and the package each serves per architecture.
    Channels(AppArg),
    /// Create a custom channel.
    CreateChannel {
        #[command(flatten)]
        app: AppArg,
        /// Channel name.
        name: String,
    },
    /// List packages.
    Packages(AppArg),
    /// Create a package; with --channel, publish it there at once.
    Publish(PackageArgs),
    /// Point a channel at a version (every architecture that has it, or --arch).
    Promote {
        #[command(flatten)]
        app: AppArg,
        /// Channel to move.
        channel: String,
        /// Version to serve.
        version: String,
        /// Only this architecture.
        #[arg(long)]
        arch: Option<String>,
    },
    /// List groups with their policies.
    Groups(AppArg),
    /// Show one group with its rollout progress.
    Group {
        #[command(flatten)]
        app: AppArg,
        /// Group id or track.
        group: String,
    },
    /// Create a group.
    CreateGroup {
        #[command(flatten)]
        app: AppArg,
        /// Group id (slug).
        id: String,
        /// Channel the group follows.
        #[arg(long)]
        channel: String,
        /// Track clients send (update.conf GROUP); defaults to the id.
        #[arg(long, default_value = "")]
        track: String,
    },
    /// Change a group's rollout policy (only the given fields).
    SetPolicy(PolicyArgs),
    /// Pause updates in a group.
    Pause {
        #[command(flatten)]
        app: AppArg,
        /// Group id or track.
        group: String,
    },
    /// Resume updates in a group (also after an automatic halt).
    Resume {
        #[command(flatten)]
        app: AppArg,
        /// Group id or track.
        group: String,
    },
    /// Search instances.
    Instances {
        /// Application (id or name).
        #[arg(long)]
        app: Option<String>,
        /// Machine id prefix.
        #[arg(long)]
        id: Option<String>,
        /// Exact version.
        #[arg(long)]
        version: Option<String>,
        /// Status: undefined, granted, downloading, downloaded, installed, complete, error, rollback, on_hold.
        #[arg(long)]
        status: Option<String>,
        /// Group id.
        #[arg(long)]
        group: Option<String>,
        /// IP address prefix.
        #[arg(long)]
        ip: Option<String>,
        /// Maximum rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show the activity log (newest first; times in RFC 3339 UTC, unix seconds with --json).
    Activity {
        /// Application (id or name).
        #[arg(long)]
        app: Option<String>,
        /// Maximum entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(clap::Args)]
struct AppArg {
    /// Application (id or name).
    #[arg(long, default_value = "flatcar")]
    app: String,
}

#[derive(clap::Args)]
struct PackageArgs {
    #[command(flatten)]
    app: AppArg,
    /// Version the payload installs.
    #[arg(long)]
    version: String,
    /// Architecture.
    #[arg(long, default_value = "amd64")]
    arch: String,
    /// Base URL the payload is served from.
    #[arg(long)]
    url: String,
    /// Payload file name under the URL.
    #[arg(long)]
    filename: String,
    /// Payload size in bytes.
    #[arg(long)]
    size: u64,
    /// Base64 SHA-1 of the payload.
    #[arg(long, default_value = "")]
    sha1: String,
    /// SHA-256 of the payload, hex or base64.
    #[arg(long)]
    sha256: String,
    /// Extra file served next to the payload, as NAME:SIZE:SHA256HEX (repeatable).
    #[arg(long = "extra")]
    extra: Vec<String>,
    /// Publish to this channel.
    #[arg(long)]
    channel: Option<String>,
}

#[derive(clap::Args)]
struct PolicyArgs {
    #[command(flatten)]
    app: AppArg,
    /// Group id or track.
    group: String,
    /// Updates granted per period.
    #[arg(long)]
    max_updates: Option<u32>,
    /// Period length in minutes.
    #[arg(long)]
    period_minutes: Option<u32>,
    /// Minutes after which an unfinished update counts as timed out.
    #[arg(long)]
    timeout_minutes: Option<u32>,
    /// Safe mode: one canary until it completes.
    #[arg(long, value_parser = ["on", "off"])]
    safe_mode: Option<String>,
    /// IANA time zone for the windows.
    #[arg(long)]
    timezone: Option<String>,
    /// Maintenance window "DAYS HH:MM MINUTES", e.g. "mon,tue,wed 09:00 120" (repeatable; replaces
    /// all windows). "none" clears them.
    #[arg(long = "window")]
    windows: Vec<String>,
    /// Halt when this percentage of granted instances failed (0 = never).
    #[arg(long)]
    halt_threshold: Option<u32>,
    /// Minimum failures before halting.
    #[arg(long)]
    halt_min_failures: Option<u32>,
}

/// A failed command: message and exit code.
struct Failure(String, u8);

pub fn run(args: Args) -> u8 {
    let client = Client {
        base: args.server.trim_end_matches('/').to_string(),
        token: args.token,
    };
    match dispatch(&client, args.command, args.json) {
        Ok(()) => exit::OK,
        Err(Failure(msg, code)) => {
            eprintln!("boxcar fleet: {msg}");
            code
        }
    }
}

struct Client {
    base: String,
    token: String,
}

impl Client {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let url = format!("{}/api/v1{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let result = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
            (m, Some(b)) => agent.run(
                ureq::http::Request::builder()
                    .method(m)
                    .uri(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .body(b.to_string())
                    .map_err(|e| Failure(format!("building request: {e}"), exit::IO))?,
            ),
            (m, None) => agent.run(
                ureq::http::Request::builder()
                    .method(m)
                    .uri(&url)
                    .header("Authorization", &auth)
                    .body(String::new())
                    .map_err(|e| Failure(format!("building request: {e}"), exit::IO))?,
            ),
        };
        let mut resp = result.map_err(|e| Failure(format!("{method} {url}: {e}"), exit::IO))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| Failure(format!("reading answer: {e}"), exit::IO))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status >= 400 {
            let msg = value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            return Err(Failure(format!("{method} {path}: HTTP {status}: {msg}"), exit::INVALID));
        }
        Ok(value)
    }
}

fn q(params: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(v)))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Unix seconds as RFC 3339 in UTC (`1704715200` → `2024-01-08T12:00:00Z`); anything that is
/// not a representable number of seconds is shown as it came.
fn rfc3339_utc(v: &Value) -> String {
    v.as_i64()
        .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| v.to_string())
}

/// Replaces the unix-second field `field` of every row with its RFC 3339 form (tables only).
fn times_as_rfc3339(mut rows: Value, field: &str) -> Value {
    for row in rows.as_array_mut().into_iter().flatten() {
        if let Some(v) = row.get_mut(field) {
            *v = Value::String(rfc3339_utc(v));
        }
    }
    rows
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn table(v: &Value, cols: &[(&str, &str)]) {
    println!("{}", cols.iter().map(|(h, _)| *h).collect::<Vec<_>>().join("\t"));
    for row in v.as_array().into_iter().flatten() {
        let cells: Vec<String> = cols
            .iter()
            .map(|(_, ptr)| match row.pointer(ptr) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => "-".into(),
                Some(other) => other.to_string(),
            })
            .collect();
        println!("{}", cells.join("\t"));
    }
}

fn parse_window(s: &str) -> Result<Value, Failure> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [days, start, len] = parts[..] else {
        return Err(Failure(
            format!("window {s:?}: expected \"DAYS HH:MM MINUTES\""),
            exit::INVALID,
        ));
    };
    let len: u32 = len
        .parse()
        .map_err(|_| Failure(format!("window {s:?}: bad length"), exit::INVALID))?;
    Ok(json!({"days": days.split(',').collect::<Vec<_>>(), "start": start, "length_minutes": len}))
}

/// `pause` or `resume` a group and print its resulting updates state.
fn set_updates(c: &Client, app: &str, group: &str, action: &str) -> Result<(), Failure> {
    let g = c.call(
        "POST",
        &format!("/apps/{}/groups/{}/{action}", encode(app), encode(group)),
        None,
    )?;
    println!(
        "group {}: updates {}",
        g["id"].as_str().unwrap_or(""),
        g["policy"]["updates"].as_str().unwrap_or("")
    );
    Ok(())
}

fn dispatch(c: &Client, cmd: Cmd, raw: bool) -> Result<(), Failure> {
    let show = |v: Value, cols: &[(&str, &str)]| if raw { print_json(&v) } else { table(&v, cols) };
    match cmd {
        Cmd::Apps => show(c.call("GET", "/apps", None)?, &[("ID", "/id"), ("NAME", "/name")]),
        Cmd::CreateApp { id, name, description } => print_json(&c.call(
            "POST",
            "/apps",
            Some(json!({"id": id, "name": name, "description": description})),
        )?),
        Cmd::Channels(a) => {
            let v = c.call("GET", &format!("/apps/{}/channels", encode(&a.app)), None)?;
            if raw {
                print_json(&v);
            } else {
                println!("CHANNEL\tARCH\tVERSION");
                for ch in v.as_array().into_iter().flatten() {
                    let name = ch["name"].as_str().unwrap_or("");
                    let pkgs = ch["packages"].as_array().cloned().unwrap_or_default();
                    if pkgs.is_empty() {
                        println!("{name}\t-\t-");
                    }
                    for p in pkgs {
                        println!(
                            "{name}\t{}\t{}",
                            p["arch"].as_str().unwrap_or(""),
                            p["version"].as_str().unwrap_or("")
                        );
                    }
                }
            }
        }
        Cmd::CreateChannel { app, name } => {
            c.call(
                "POST",
                &format!("/apps/{}/channels", encode(&app.app)),
                Some(json!({"name": name})),
            )?;
            println!("created channel {name}");
        }
        Cmd::Packages(a) => show(
            c.call("GET", &format!("/apps/{}/packages", encode(&a.app)), None)?,
            &[
                ("ID", "/id"),
                ("VERSION", "/version"),
                ("ARCH", "/arch"),
                ("SIZE", "/size"),
                ("URL", "/url"),
            ],
        ),
        Cmd::Publish(p) => {
            let mut extra = Vec::new();
            for e in &p.extra {
                let parts: Vec<&str> = e.splitn(3, ':').collect();
                let [name, size, sha] = parts[..] else {
                    return Err(Failure(
                        format!("--extra {e:?}: expected NAME:SIZE:SHA256HEX"),
                        exit::INVALID,
                    ));
                };
                let size: u64 = size
                    .parse()
                    .map_err(|_| Failure(format!("--extra {e:?}: bad size"), exit::INVALID))?;
                extra.push(json!({"name": name, "size": size, "sha256_hex": sha}));
            }
            let body = json!({"version": p.version, "arch": p.arch, "url": p.url, "filename": p.filename,
                              "size": p.size, "sha1": p.sha1, "sha256": p.sha256, "extra_files": extra,
                              "channel": p.channel});
            print_json(&c.call("POST", &format!("/apps/{}/packages", encode(&p.app.app)), Some(body))?);
        }
        Cmd::Promote {
            app,
            channel,
            version,
            arch,
        } => {
            let v = c.call(
                "PUT",
                &format!("/apps/{}/channels/{}", encode(&app.app), encode(&channel)),
                Some(json!({"version": version, "arch": arch})),
            )?;
            for p in v.as_array().into_iter().flatten() {
                println!(
                    "{channel} ({}) now serves {}",
                    p["arch"].as_str().unwrap_or(""),
                    p["version"].as_str().unwrap_or("")
                );
            }
        }
        Cmd::Groups(a) => show(
            c.call("GET", &format!("/apps/{}/groups", encode(&a.app)), None)?,
            &[
                ("ID", "/id"),
                ("TRACK", "/track"),
                ("CHANNEL", "/channel"),
                ("UPDATES", "/policy/updates"),
                ("SAFE", "/policy/safe_mode"),
                ("MAX/PERIOD", "/policy/max_updates_per_period"),
                ("PERIOD_MIN", "/policy/period_minutes"),
            ],
        ),
        Cmd::Group { app, group } => print_json(&c.call(
            "GET",
            &format!("/apps/{}/groups/{}", encode(&app.app), encode(&group)),
            None,
        )?),
        Cmd::CreateGroup {
            app,
            id,
            channel,
            track,
        } => print_json(&c.call(
            "POST",
            &format!("/apps/{}/groups", encode(&app.app)),
            Some(json!({"id": id, "channel": channel, "track": track})),
        )?),
        Cmd::SetPolicy(p) => {
            let path = format!("/apps/{}/groups/{}", encode(&p.app.app), encode(&p.group));
            let mut policy = c.call("GET", &path, None)?["policy"].clone();
            let set = |policy: &mut Value, k: &str, v: Value| policy[k] = v;
            if let Some(v) = p.max_updates {
                set(&mut policy, "max_updates_per_period", v.into());
            }
            if let Some(v) = p.period_minutes {
                set(&mut policy, "period_minutes", v.into());
            }
            if let Some(v) = p.timeout_minutes {
                set(&mut policy, "update_timeout_minutes", v.into());
            }
            if let Some(v) = p.safe_mode {
                set(&mut policy, "safe_mode", v.into());
            }
            if let Some(v) = p.timezone {
                set(&mut policy, "timezone", v.into());
            }
            if p.windows.iter().any(|w| w == "none") {
                set(&mut policy, "windows", json!([]));
            } else if !p.windows.is_empty() {
                let ws = p
                    .windows
                    .iter()
                    .map(|w| parse_window(w))
                    .collect::<Result<Vec<_>, _>>()?;
                set(&mut policy, "windows", Value::Array(ws));
            }
            if let Some(v) = p.halt_threshold {
                policy["halt"]["threshold_percent"] = v.into();
            }
            if let Some(v) = p.halt_min_failures {
                policy["halt"]["min_failures"] = v.into();
            }
            print_json(&c.call("PATCH", &path, Some(json!({"policy": policy})))?["policy"]);
        }
        Cmd::Pause { app, group } => set_updates(c, &app.app, &group, "pause")?,
        Cmd::Resume { app, group } => set_updates(c, &app.app, &group, "resume")?,
        Cmd::Instances {
            app,
            id,
            version,
            status,
            group,
            ip,
            limit,
        } => show(
            c.call(
                "GET",
                &format!(
                    "/instances{}",
                    q(&[
                        ("app", app),
                        ("id", id),
                        ("version", version),
                        ("status", status),
                        ("group", group),
                        ("ip", ip),
                        ("limit", Some(limit.to_string())),
                    ])
                ),
                None,
            )?,
            &[
                ("MACHINE", "/machine_id"),
                ("VERSION", "/version"),
                ("STATUS", "/status"),
                ("GROUP", "/group_id"),
                ("IP", "/ip"),
                ("LAST_ERROR", "/last_error"),
            ],
        ),
        Cmd::Activity { app, limit } => {
            let rows = c.call(
                "GET",
                &format!("/activity{}", q(&[("app", app), ("limit", Some(limit.to_string()))])),
                None,
            )?;
            show(
                if raw { rows } else { times_as_rfc3339(rows, "ts") },
                &[
                    ("TS", "/ts"),
                    ("KIND", "/kind"),
                    ("GROUP", "/group_id"),
                    ("VERSION", "/version"),
                    ("MESSAGE", "/message"),
                ],
            )
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_print_as_rfc3339_utc() {
        // 1704715200 = 19730 days * 86400 + 12 h: Monday 8 January 2024, 12:00 UTC.
        assert_eq!(rfc3339_utc(&json!(1704715200)), "2024-01-08T12:00:00Z");
        assert_eq!(rfc3339_utc(&json!(0)), "1970-01-01T00:00:00Z");
        // One second before the epoch, and a leap day.
        assert_eq!(rfc3339_utc(&json!(-1)), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(&json!(1709164800)), "2024-02-29T00:00:00Z");
        // Not seconds: shown as they came, never a panic.
        assert_eq!(rfc3339_utc(&json!("soon")), "\"soon\"");
        assert_eq!(rfc3339_utc(&json!(i64::MAX)), i64::MAX.to_string());
        let rows = times_as_rfc3339(json!([{"ts": 86400, "kind": "x"}, {"kind": "y"}]), "ts");
        assert_eq!(
            rows,
            json!([{"ts": "1970-01-02T00:00:00Z", "kind": "x"}, {"kind": "y"}])
        );
    }
}
