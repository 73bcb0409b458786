//! YAML → positioned tree, resolving scalars the way go-yaml v3 does for
//! Butane (so `mode: 0644` is octal 420 and `gecos: 1234` still works as a
//! string), with two additions Butane lacks: `<<` merge keys, and several
//! documents in one file.

use crate::tree::{Entry, Node, Pos, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Alias expansion beyond this many nodes is refused ("billion laughs").
pub const MAX_NODES: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {} col {}: {message}", pos.line, pos.col)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

fn pos(m: &Marker) -> Pos {
    Pos::new(m.line() as u32, m.col() as u32 + 1)
}

/// Parse every document of a YAML stream.
pub fn parse(input: &str) -> Result<Vec<Node>, YamlError> {
    // YAML forbids tabs in indentation; say so where the tab is, rather
    // than where the parser notices.
    for (i, line) in input.lines().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        if let Some(col) = indent.find('\t') {
            if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
                return Err(YamlError {
                    pos: Pos::new(i as u32 + 1, col as u32 + 1),
                    message: "YAML syntax error: a tab character is used for indentation; use spaces".into(),
                });
            }
        }
    }
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(input);
    if let Err(e) = parser.load(&mut b, true) {
        return Err(YamlError {
            pos: pos(e.marker()),
            message: format!("YAML syntax error: {}", e.info()),
        });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.docs)
}

enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<Entry>, Pos, usize, Option<(String, Pos)>, Vec<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    docs: Vec<Node>,
    count: usize,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, at: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                pos: at,
                message: message.into(),
            });
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(entries, _, _, key, merges)) => match key.take() {
                None => match &node.value {
                    Value::Str(s) => *key = Some((s.clone(), node.pos)),
                    Value::Null => *key = Some((String::new(), node.pos)),
                    _ => match node.text.as_deref() {
                        Some(t) => *key = Some((t.to_string(), node.pos)),
                        None => {
                            let at = node.pos;
                            self.fail(at, "YAML mapping keys must be scalars");
                        }
                    },
                },
                Some((k, _)) if k == "<<" => match node.value {
                    Value::Map(_) => merges.push(node),
                    Value::List(list) => merges.extend(list),
                    _ => {
                        let at = node.pos;
                        self.fail(at, "a YAML merge key (<<) needs a mapping or a list of mappings");
                    }
                },
                Some((k, key_pos)) if entries.iter().any(|e| e.key == k) => {
                    let first = entries.iter().find(|e| e.key == k).map_or(0, |e| e.key_pos.line);
                    self.fail(
                        key_pos,
                        format!("YAML: mapping key {k:?} already defined at line {first}"),
                    );
                }
                Some((k, key_pos)) => entries.push(Entry {
                    written: k.clone(),
                    key: k,
                    key_pos,
                    value: node,
                }),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        self.count += 1;
        let at = pos(&mark);
        match ev {
            Event::Scalar(s, style, anchor, tag) => {
                let node = resolve(s, style, tag.is_some(), at);
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), at, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(Vec::new(), at, anchor, None, Vec::new())),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, p, anchor)) = self.stack.pop() {
                    self.push_value(Node::new(Value::List(items), p), anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(mut entries, p, anchor, _, merges)) = self.stack.pop() {
                    // Merge keys: explicit keys win, earlier merges win over later ones.
                    for m in merges {
                        if let Value::Map(extra) = m.value {
                            for e in extra {
                                if !entries.iter().any(|x| x.key == e.key) {
                                    entries.push(e);
                                }
                            }
                        } else {
                            self.fail(m.pos, "a YAML merge key (<<) needs a mapping or a list of mappings");
                        }
                    }
                    // yaml-rust2 marks a block mapping after its first key;
                    // report it where the user sees it start, at that key.
                    let p = entries.first().map_or(p, |e| e.key_pos.min(p));
                    self.push_value(Node::new(Value::Map(entries), p), anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(n) => {
                    self.count += count_nodes(&n);
                    if self.count > MAX_NODES {
                        self.fail(at, format!("YAML aliases expand to more than {MAX_NODES} values"));
                        return;
                    }
                    self.push_value(n, 0);
                }
                None => self.fail(at, "YAML alias to an unknown anchor"),
            },
            _ => {}
        }
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.value {
        Value::List(v) => 1 + v.iter().map(count_nodes).sum::<usize>(),
        Value::Map(e) => 1 + e.iter().map(|e| count_nodes(&e.value)).sum::<usize>(),
        _ => 1,
    }
}

/// go-yaml v3's resolution of plain scalars; quoted, block and tagged
/// scalars are strings.
fn resolve(s: String, style: TScalarStyle, tagged: bool, at: Pos) -> Node {
    if style != TScalarStyle::Plain || tagged {
        return Node::new(Value::Str(s), at);
    }
    let value = match s.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => parse_int(&s)
            .map(Value::Int)
            .or_else(|| parse_float(&s).map(Value::Float))
            .unwrap_or_else(|| Value::Str(s.clone())),
    };
    let mut n = Node::new(value, at);
    if !matches!(n.value, Value::Str(_)) {
        n.text = Some(s.into_boxed_str());
    } else {
        n.value = Value::Str(s);
    }
    n
}

/// Go's `strconv.ParseInt(s, 0, 64)` after removing `_`: decimal, `0x`,
/// `0o`, `0b`, and a leading `0` meaning octal (`0644` = 420).
pub fn parse_int(s: &str) -> Option<i64> {
    let t: String = s.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, &t[..]),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let ok = s.bytes().all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b)) && s.bytes().any(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    s.replace('_', "").parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Node {
        parse(s).unwrap().remove(0)
    }

    #[test]
    fn scalars_resolve_like_go_yaml() {
        let n = one("a: 0644\nb: 420\nc: '0644'\nd: true\ne: yes\nf: ~\ng: 0o750\nh: 1.5\ni: 0x1F\n");
        assert_eq!(n.get("a").unwrap().value, Value::Int(420));
        assert_eq!(n.get("a").unwrap().text.as_deref(), Some("0644"));
        assert_eq!(n.get("b").unwrap().value, Value::Int(420));
        assert_eq!(n.get("c").unwrap().value, Value::Str("0644".into()));
        assert_eq!(n.get("d").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("e").unwrap().value, Value::Str("yes".into()));
        assert_eq!(n.get("f").unwrap().value, Value::Null);
        assert_eq!(n.get("g").unwrap().value, Value::Int(488));
        assert_eq!(n.get("h").unwrap().value, Value::Float(1.5));
        assert_eq!(n.get("i").unwrap().value, Value::Int(31));
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("storage:\n  files:\n    - path: /a\n");
        let files = n.get("storage").unwrap().get("files").unwrap();
        let Value::List(items) = &files.value else { panic!() };
        assert_eq!(items[0].pos, Pos::new(3, 7));
        assert_eq!(items[0].get("path").unwrap().pos, Pos::new(3, 13));
        assert_eq!(items[0].entries().unwrap()[0].key_pos, Pos::new(3, 7));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = one("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().value, Value::Int(1));
        assert_eq!(c.get("y").unwrap().value, Value::Int(3));
    }

    #[test]
    fn errors_and_bombs() {
        let e = parse("a: [1, 2\nb: c").unwrap_err();
        assert!(e.message.starts_with("YAML"), "{e}");
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [{}]\n",
                vec![
                    if i == 0 {
                        "*a".to_string()
                    } else {
                        format!("*b{}", i - 1)
                    };
                    10
                ]
                .join(", ")
            ));
        }
        assert!(parse(&bomb).unwrap_err().message.contains("aliases expand"));
        assert_eq!(parse_int("08"), None);
        assert_eq!(parse_int("-0755"), Some(-493));
    }
}
