//! Butane YAML → Ignition JSON.
//!
//! The YAML is parsed into a positioned tree, its Butane sugar (`inline`,
//! `local`, `contents_local`, `ssh_authorized_keys_local`, `trees`,
//! `with_mount_unit`) is rewritten into plain Ignition nodes that remember
//! where they came from, and the result goes through the same strict
//! decoder and validator as Ignition JSON. Every diagnostic therefore names
//! the YAML `file:line:col` and the snake_case path the user wrote.
//!
//! Boxcar additions: `include:` (a list of Butane files merged under this
//! one, relative to its directory), several YAML documents in one file
//! (merged in order), and YAML `<<` merge keys.

mod desugar;
pub mod fcos;
pub mod local;
pub mod variant;

use crate::decode::ScalarRules;
use crate::ignition;
use crate::merge::merge;
use crate::model::Config;
use crate::path::Path;
use crate::report::{PathNaming, Report, Strictness};
use crate::tree::{Node, Value};
use crate::validate;
use crate::yaml;
pub use local::FilesDir;
use std::path::PathBuf;
pub use variant::Target;

/// Includes nested deeper than this are refused (cycles are caught earlier).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Options for one translation.
#[derive(Debug, Clone)]
pub struct Options {
    /// Root for `local:` and `trees:`; `None` forbids them.
    pub files_dir: FilesDir,
    /// Warnings fail the translation.
    pub strictness: Strictness,
    /// The input's own path, for resolving `include:`; `None` for stdin.
    pub source_path: Option<PathBuf>,
}

/// A successful translation.
#[derive(Debug, Clone)]
pub struct Translated {
    pub config: Config,
    pub target: Target,
    /// Warnings, with file names for included files.
    pub report: Report,
}

/// A diagnostic report per input file (the main one first, then includes).
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub reports: Vec<(String, Report)>,
}

/// Translate Butane `input` (the file named `name`).
pub fn translate(input: &[u8], name: &str, opts: &Options) -> Result<Translated, Failure> {
    let mut stack = Vec::new();
    translate_inner(input, name, opts, &mut stack)
}

fn fail(name: &str, r: Report) -> Failure {
    Failure {
        reports: vec![(name.to_string(), r)],
    }
}

fn translate_inner(input: &[u8], name: &str, opts: &Options, stack: &mut Vec<PathBuf>) -> Result<Translated, Failure> {
    let mut r = Report::new();
    let text = match std::str::from_utf8(input) {
        Ok(t) => t,
        Err(e) => {
            r.error(
                Path::root(),
                format!("input is not valid UTF-8 (byte {})", e.valid_up_to()),
            );
            return Err(fail(name, r));
        }
    };
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            r.error(Path::root(), e.message).pos = Some(e.pos);
            return Err(fail(name, r));
        }
    };
    let mut result: Option<Translated> = None;
    let mut failure = Failure::default();
    if docs.is_empty() {
        r.error(Path::root(), "error parsing variant; must be specified").pos = Some(Default::default());
        return Err(fail(name, r));
    }
    for doc in docs {
        match translate_doc(doc, name, opts, stack) {
            Ok(t) => match result.take() {
                None => result = Some(t),
                Some(prev) => match combine(prev, t) {
                    Ok(c) => result = Some(c),
                    Err(f) => failure.reports.extend(f.reports),
                },
            },
            Err(f) => failure.reports.extend(f.reports),
        }
    }
    if !failure.reports.is_empty() {
        return Err(failure);
    }
    Ok(result.expect("at least one document"))
}

/// The name failures of a merged result are reported under.
pub const MERGED_NAME: &str = "<merged config>";

/// Merge a later document, an including file or a later CLI input over
/// `parent`; the output declares the newer of the two spec versions.
///
/// Each part was valid on its own, but the merge can still produce an
/// invalid whole (a file in one and a directory at the same path in the
/// other), so the result is validated again; its errors carry JSON paths
/// of the merged config, reported under [`MERGED_NAME`].
pub fn combine(parent: Translated, child: Translated) -> Result<Translated, Failure> {
    let mut report = parent.report;
    report.merge(child.report);
    let mut config = merge(&parent.config, &child.config);
    let target = if child.target.spec >= parent.target.spec {
        child.target
    } else {
        parent.target
    };
    config.ignition.version = target.spec.as_str().to_string();
    let mut vr = validate::validate(&config, target.spec);
    vr.entries.retain(|d| d.severity == crate::report::Severity::Error);
    if vr.has_errors() {
        for d in &mut vr.entries {
            d.shown_path = Some(d.path.to_snake());
            d.help.get_or_insert_with(|| "the merged inputs conflict here".into());
        }
        return Err(fail(MERGED_NAME, vr));
    }
    Ok(Translated { config, target, report })
}

fn doc_target(doc: &Node, r: &mut Report) -> Option<Target> {
    let field = |k: &str| {
        doc.get(k)
            .and_then(|n| n.as_str().map(str::to_string).or(n.text.as_deref().map(str::to_string)))
    };
    let Some(variant) = field("variant") else {
        let d = r.error(Path::root().key("variant"), "error parsing variant; must be specified");
        d.pos = Some(doc.pos);
        d.shown_path = Some(Path::root().key("variant"));
        return None;
    };
    let version = field("version").unwrap_or_default();
    if !crate::version::is_semver(&version) {
        let at = doc.get("version").map_or(doc.pos, |n| n.pos);
        let d = r.error(
            Path::root().key("version"),
            "error parsing version; must be a valid semver",
        );
        d.pos = Some(at);
        d.shown_path = Some(Path::root().key("version"));
        return None;
    }
    let known_variant = Target::ALL.iter().any(|t| t.variant_name() == variant);
    match Target::find(&variant, &version) {
        Some(t) => Some(t),
        None => {
            let key = if known_variant { "version" } else { "variant" };
            let at = doc.get(key).map_or(doc.pos, |n| n.pos);
            let d = r.error(
                Path::root().key(key),
                format!("No translator exists for variant {variant} with version {version}"),
            );
            d.pos = Some(at);
            d.shown_path = Some(Path::root().key(key));
            d.help = Some(format!(
                "supported: {}",
                Target::ALL
                    .map(|t| format!("{} {}", t.variant_name(), t.version))
                    .join(", ")
            ));
            None
        }
    }
}

fn translate_doc(mut doc: Node, name: &str, opts: &Options, stack: &mut Vec<PathBuf>) -> Result<Translated, Failure> {
    let mut r = Report::new();
    if !matches!(doc.value, Value::Map(_)) {
        r.error(Path::root(), format!("expected an object, found {}", doc.value.kind()))
            .pos = Some(doc.pos);
        return Err(fail(name, r));
    }
    let Some(target) = doc_target(&doc, &mut r) else {
        return Err(fail(name, r));
    };
    let sugar = fcos::take(&mut doc, target, &mut r);
    let includes = doc.remove("include");
    desugar::desugar(&mut doc, target, opts, &mut r);
    let (parsed, vr) = ignition::from_tree(
        &doc,
        ScalarRules::Yaml,
        PathNaming::Yaml,
        Some(variant::requirement_label),
    );
    r.merge(vr);
    let Some((mut config, _)) = parsed else {
        return Err(fail(name, r));
    };
    if target.variant == variant::Variant::Fcos {
        let mut pr = Report::new();
        fcos::check_partitions(&config, &mut pr);
        pr.correlate(&doc, PathNaming::Yaml);
        r.merge(pr);
    }
    let rendered = merge(&fcos::render_grub(&sugar.grub), &fcos::render_boot_device(&sugar.boot));
    if rendered != Config::default() {
        // Butane merges the user's config over what the sugar stands for,
        // and the result must still be a valid config.
        config = merge(&rendered, &config);
        let mut vr = validate::validate(&config, target.spec);
        fcos::relocate(&sugar, &mut vr);
        vr.correlate(&doc, PathNaming::Yaml);
        r.merge(vr);
    }
    if !target.allows_clevis() {
        for (i, l) in config.storage.luks.iter().enumerate() {
            if l.clevis != Default::default() {
                let p = Path::root().keys(&["storage", "luks"]).index(i).key("clevis");
                let loc = doc.locate(&p);
                let d = r.error(p.clone(), "clevis is not supported in this spec version");
                d.pos = Some(loc.node.pos);
                d.shown_path = Some(p);
            }
        }
    }
    r.sort();
    if r.is_fatal(opts.strictness) {
        return Err(fail(name, r));
    }
    let mut out = Translated {
        config,
        target,
        report: r,
    };
    out.config.ignition.version = target.spec.as_str().to_string();
    if let Some(inc) = includes {
        out = apply_includes(out, &inc.value.value, name, opts, stack)?;
    }
    Ok(out)
}

/// `include: [base.bu, roles/web.bu]`: each is translated and merged in
/// order, and this file is merged over all of them.
fn apply_includes(
    this: Translated,
    list: &Value,
    name: &str,
    opts: &Options,
    stack: &mut Vec<PathBuf>,
) -> Result<Translated, Failure> {
    let base_dir = opts
        .source_path
        .as_ref()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."));
    let items: Vec<&Node> = match list {
        Value::List(v) => v.iter().collect(),
        Value::Null => vec![],
        _ => {
            let mut r = Report::new();
            r.error(Path::root().key("include"), "include must be a list of file names");
            return Err(fail(name, r));
        }
    };
    let mut acc: Option<Translated> = None;
    for (i, item) in items.into_iter().enumerate() {
        let mut r = Report::new();
        let p = Path::root().key("include").index(i);
        let Some(rel) = item.as_str() else {
            r.error(p, "include entries must be file names").pos = Some(item.pos);
            return Err(fail(name, r));
        };
        let path = base_dir.join(rel);
        let canon = path.canonicalize().unwrap_or(path.clone());
        if stack.contains(&canon) || stack.len() >= MAX_INCLUDE_DEPTH {
            r.error(p, format!("include cycle: {rel} includes itself")).pos = Some(item.pos);
            return Err(fail(name, r));
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                r.error(p, format!("reading include {}: {e}", path.display())).pos = Some(item.pos);
                return Err(fail(name, r));
            }
        };
        stack.push(canon);
        let sub = Options {
            source_path: Some(path.clone()),
            ..opts.clone()
        };
        let t = translate_inner(&bytes, &path.display().to_string(), &sub, stack);
        stack.pop();
        let t = t?;
        acc = Some(match acc {
            None => t,
            Some(prev) => combine(prev, t)?,
        });
    }
    match acc {
        None => Ok(this),
        Some(base) => combine(base, this),
    }
}
