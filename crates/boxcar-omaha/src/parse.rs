//! Bounded XML reading into a small element tree, shared by request and response parsing.
//!
//! Text content is irrelevant to Omaha (everything lives in attributes), so only elements and their
//! attributes are kept. The reader never expands anything but the five predefined entities and
//! character references, because DTDs are refused outright.

use crate::ParseError;
use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;
use std::borrow::Cow;

/// Bounds applied while parsing. The defaults follow Nebraska (64 KiB bodies) and are generous for
/// every document update_engine sends, which are under 2 KiB.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted document in bytes.
    pub max_body: usize,
    /// Largest accepted attribute value in bytes (after unescaping).
    pub max_attribute_len: usize,
    /// Largest number of elements in one document.
    pub max_elements: usize,
    /// Deepest accepted nesting.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 64 * 1024,
            max_attribute_len: 2048,
            max_elements: 512,
            max_depth: 16,
        }
    }
}

/// One element with its attributes (in document order) and child elements.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Node {
    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Attribute value as an owned string, if present.
    pub fn attr_owned(&self, name: &str) -> Option<String> {
        self.attr(name).map(str::to_string)
    }

    /// Child elements called `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// First child element called `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// A numeric attribute; missing → `None`, present but not a number → error.
    pub fn num<T: std::str::FromStr>(
        &self,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<Option<T>, ParseError> {
        match self.attr(attribute) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ParseError::InvalidNumber {
                element,
                attribute,
                value: v.chars().take(64).collect(),
            }),
        }
    }
}

/// One element's attributes in document order: local name and unescaped value (borrowed from the
/// body unless unescaping changed it).
pub(crate) type Attrs<'x> = [(&'x str, Cow<'x, str>)];

/// The first value of attribute `name`.
pub(crate) fn attr<'x>(attrs: &'x Attrs<'_>, name: &str) -> Option<&'x str> {
    attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_ref())
}

/// A numeric attribute; missing or blank → `None`, present but not a number → error.
pub(crate) fn num<T: std::str::FromStr>(
    attrs: &Attrs<'_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<Option<T>, ParseError> {
    match attr(attrs, attribute) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| ParseError::InvalidNumber {
            element,
            attribute,
            value: v.chars().take(64).collect(),
        }),
    }
}

/// Receives the elements of a document as [`walk`] reads them. Nothing is reported before the
/// whole document has been read without error, so a visitor keeps its own findings (and its first
/// semantic error) until [`walk`] returns.
pub(crate) trait Visitor {
    /// An element opens at `depth` (the root is 0).
    fn open(&mut self, depth: usize, name: &str, attrs: &Attrs<'_>);
    /// The element opened last at `depth` closes.
    fn close(&mut self, depth: usize);
}

/// Reads `body` element by element, enforcing `limits`, and calls `v` for each element; no tree
/// is built, so a visitor copies only what it keeps.
pub(crate) fn walk(body: &[u8], limits: &Limits, v: &mut impl Visitor) -> Result<(), ParseError> {
    if body.len() > limits.max_body {
        return Err(ParseError::BodyTooLarge {
            len: body.len(),
            max: limits.max_body,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| ParseError::Utf8)?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    // Names of the open elements, concatenated (for the "unclosed" message), and where each
    // starts; the depth is the number of starts. Both buffers are reused, as is `spare`, the
    // attribute list's allocation: a document costs a handful of allocations, not one per element.
    let mut open_names = String::new();
    let mut open: Vec<usize> = Vec::new();
    let mut spare: Vec<(&str, Cow<'_, str>)> = Vec::new();
    let mut seen_root = false;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| xml_error(&reader, e))?;
        let (start, empty) = match event {
            XmlEvent::DocType(_) => return Err(ParseError::Doctype),
            XmlEvent::Start(start) => (start, false),
            XmlEvent::Empty(start) => (start, true),
            XmlEvent::End(_) => {
                let Some(at) = open.pop() else {
                    return Err(ParseError::Xml {
                        position: position(&reader),
                        message: "unexpected closing tag".into(),
                    });
                };
                open_names.truncate(at);
                v.close(open.len());
                continue;
            }
            XmlEvent::Text(t) if t.contains(&b'&') => {
                t.unescape().map_err(|e| ParseError::Entity(e.to_string()))?;
                continue;
            }
            XmlEvent::Eof => break,
            _ => continue,
        };
        count += 1;
        if count > limits.max_elements || open.len() >= limits.max_depth {
            return Err(ParseError::TooManyElements {
                max: limits.max_elements,
            });
        }
        if seen_root && open.is_empty() {
            return Err(ParseError::Xml {
                position: position(&reader),
                message: "more than one root element".into(),
            });
        }
        seen_root = true;
        let local = start.local_name();
        let name = std::str::from_utf8(local.as_ref()).map_err(|_| ParseError::Utf8)?;
        let mut attrs = recycle(std::mem::take(&mut spare));
        for a in start.attributes() {
            let a = a.map_err(|e| ParseError::Xml {
                position: 0,
                message: e.to_string(),
            })?;
            attrs.push(attribute(name, a, limits)?);
        }
        let depth = open.len();
        v.open(depth, name, &attrs);
        spare = recycle(attrs);
        if empty {
            v.close(depth);
        } else {
            open.push(open_names.len());
            open_names.push_str(name);
        }
    }
    if let Some(&at) = open.last() {
        return Err(ParseError::Xml {
            position: position(&reader),
            message: format!("unclosed element <{}>", &open_names[at..]),
        });
    }
    if !seen_root {
        return Err(ParseError::Empty);
    }
    Ok(())
}

/// Empties an attribute list and hands its allocation on with new lifetimes (the standard
/// library collects an emptied `Vec` into one of the same element layout in place).
// `filter` cannot change the element type (the lifetimes); the closure never runs on an empty Vec.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'x, 'y>(mut v: Vec<(&'x str, Cow<'x, str>)>) -> Vec<(&'y str, Cow<'y, str>)> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Builds the whole element tree (responses, which are parsed by the node, not in a hot path).
#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Node>,
    root: Option<Node>,
}

impl Visitor for TreeBuilder {
    fn open(&mut self, _depth: usize, name: &str, attrs: &Attrs<'_>) {
        self.stack.push(Node {
            name: name.to_string(),
            attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            children: Vec::new(),
        });
    }

    fn close(&mut self, _depth: usize) {
        if let Some(node) = self.stack.pop() {
            match self.stack.last_mut() {
                Some(parent) => parent.children.push(node),
                None => self.root = Some(node),
            }
        }
    }
}

/// Parses `body` into its root element, enforcing `limits`.
pub(crate) fn parse_tree(body: &[u8], limits: &Limits) -> Result<Node, ParseError> {
    let mut tree = TreeBuilder::default();
    walk(body, limits, &mut tree)?;
    tree.root.ok_or(ParseError::Empty)
}

fn position(reader: &Reader<&[u8]>) -> u64 {
    reader.buffer_position()
}

fn xml_error(reader: &Reader<&[u8]>, e: quick_xml::Error) -> ParseError {
    match e {
        quick_xml::Error::Escape(esc) => ParseError::Entity(esc.to_string()),
        other => ParseError::Xml {
            position: position(reader),
            message: other.to_string(),
        },
    }
}

fn attribute<'x>(
    element: &str,
    attr: quick_xml::events::attributes::Attribute<'x>,
    limits: &Limits,
) -> Result<(&'x str, Cow<'x, str>), ParseError> {
    let key = std::str::from_utf8(attr.key.local_name().into_inner()).map_err(|_| ParseError::Utf8)?;
    if attr.value.len() > limits.max_attribute_len {
        return Err(ParseError::AttributeTooLong {
            element: element.to_string(),
            attribute: key.to_string(),
            len: attr.value.len(),
            max: limits.max_attribute_len,
        });
    }
    let value = attr.unescape_value().map_err(|e| match e {
        quick_xml::Error::Escape(esc) => ParseError::Entity(esc.to_string()),
        other => ParseError::Xml {
            position: 0,
            message: other.to_string(),
        },
    })?;
    Ok((key, value))
}
