//! A positioned value tree shared by the JSON and YAML front ends.
//!
//! Both Ignition JSON and Butane YAML are first parsed into [`Node`]s that
//! remember where each value came from. Typed decoding, validation and
//! error reporting then work on one representation, so a mistake found deep
//! in validation can still name `file:line:col` in whichever input the user
//! wrote.

use crate::path::Path;

/// A 1-based line and column in the input (columns count bytes, like Ignition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Where a generated node should be reported: the source construct that
/// produced it (a Butane `inline:` that became a `source:`, a tree entry that
/// became a file) rather than the generated JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub path: Path,
    pub pos: Pos,
}

/// One value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// Set on nodes synthesised by a translation step.
    pub origin: Option<Box<Origin>>,
    /// The scalar's source text for YAML plain scalars, which Go-YAML lets
    /// decode into string fields whatever type they resolve to (`gecos: 1234`).
    pub text: Option<Box<str>>,
}

/// A mapping entry; the key keeps its own position for "unused key" reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as the decoder looks it up (Ignition's camelCase).
    pub key: String,
    /// The key as the user wrote it (differs for Butane's snake_case).
    pub written: String,
    pub key_pos: Pos,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// A number that is not an integer in the range of `i64`.
    Float(f64),
    Str(String),
    List(Vec<Node>),
    Map(Vec<Entry>),
}

impl Value {
    /// The article-and-noun description used in type errors ("an integer").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "an object",
        }
    }
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Self {
        Node {
            value,
            pos,
            origin: None,
            text: None,
        }
    }

    /// A node generated from the construct at `origin`.
    pub fn generated(value: Value, origin: &Origin) -> Self {
        Node {
            value,
            pos: origin.pos,
            origin: Some(Box::new(origin.clone())),
            text: None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The last entry with this key (JSON and YAML decoders keep the last
    /// of duplicated keys, as Go's decoders do).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?.iter().rev().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().rev().find(|e| e.key == key)
    }

    /// Follow `path` as far as it goes. Returns the deepest node reached,
    /// whether the whole path was found, and the deepest origin override on
    /// the way (for reporting generated nodes at their source).
    pub fn locate<'a>(&'a self, path: &Path) -> Located<'a> {
        let mut node = self;
        let mut origin = self.origin.as_deref();
        let mut key_pos = None;
        for (depth, seg) in path.segments().iter().enumerate() {
            let next = match (seg, &node.value) {
                (crate::path::Seg::Key(k), Value::Map(entries)) => entries
                    .iter()
                    .rev()
                    .find(|e| &e.key == k)
                    .map(|e| (&e.value, Some(e.key_pos))),
                (crate::path::Seg::Index(i), Value::List(items)) => items.get(*i).map(|n| (n, None)),
                _ => None,
            };
            match next {
                Some((n, kp)) => {
                    node = n;
                    key_pos = kp;
                    if n.origin.is_some() {
                        origin = n.origin.as_deref();
                    }
                }
                None => {
                    return Located {
                        node,
                        complete: false,
                        depth,
                        origin,
                        key_pos: None,
                    }
                }
            }
        }
        Located {
            node,
            complete: true,
            depth: path.segments().len(),
            origin,
            key_pos,
        }
    }
}

/// The result of [`Node::locate`].
pub struct Located<'a> {
    pub node: &'a Node,
    pub complete: bool,
    /// How many path segments were matched.
    pub depth: usize,
    pub origin: Option<&'a Origin>,
    /// The key's position when the last segment was a mapping key.
    pub key_pos: Option<Pos>,
}

impl Node {
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(e) => e.iter_mut().rev().find(|e| e.key == key).map(|e| &mut e.value),
            _ => None,
        }
    }

    /// Remove every entry with `key`, returning the last.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        match &mut self.value {
            Value::Map(e) => {
                let last = e.iter().rposition(|x| x.key == key)?;
                let out = e[last].clone();
                e.retain(|x| x.key != key);
                Some(out)
            }
            _ => None,
        }
    }

    /// Set `key` to `value` (replacing an existing entry in place).
    pub fn set(&mut self, key: &str, value: Node) {
        if let Value::Map(e) = &mut self.value {
            match e.iter_mut().rev().find(|x| x.key == key) {
                Some(x) => x.value = value,
                None => {
                    let key_pos = value.pos;
                    e.push(Entry {
                        key: key.to_string(),
                        written: key.to_string(),
                        key_pos,
                        value,
                    })
                }
            }
        }
    }

    pub fn items_mut(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.value {
            Value::List(v) => Some(v),
            _ => None,
        }
    }
}
