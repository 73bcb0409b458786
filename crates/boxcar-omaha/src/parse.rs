//! Bounded XML reading into a small element tree, shared by request and response parsing.
//!
//! Text content is irrelevant to Omaha (everything lives in attributes), so only elements and their
//! attributes are kept. The reader never expands anything but the five predefined entities and
//! character references, because DTDs are refused outright.

use crate::ParseError;
use quick_xml::events::{BytesStart, Event as XmlEvent};
use quick_xml::Reader;

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

/// Parses `body` into its root element, enforcing `limits`.
pub(crate) fn parse_tree(body: &[u8], limits: &Limits) -> Result<Node, ParseError> {
    if body.len() > limits.max_body {
        return Err(ParseError::BodyTooLarge {
            len: body.len(),
            max: limits.max_body,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| ParseError::Utf8)?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| xml_error(&reader, e))?;
        match event {
            XmlEvent::DocType(_) => return Err(ParseError::Doctype),
            XmlEvent::Start(start) => {
                count += 1;
                if count > limits.max_elements || stack.len() >= limits.max_depth {
                    return Err(ParseError::TooManyElements {
                        max: limits.max_elements,
                    });
                }
                if root.is_some() && stack.is_empty() {
                    return Err(ParseError::Xml {
                        position: position(&reader),
                        message: "more than one root element".into(),
                    });
                }
                stack.push(element(&start, limits)?);
            }
            XmlEvent::Empty(start) => {
                count += 1;
                if count > limits.max_elements || stack.len() >= limits.max_depth {
                    return Err(ParseError::TooManyElements {
                        max: limits.max_elements,
                    });
                }
                let node = element(&start, limits)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None if root.is_none() => root = Some(node),
                    None => {
                        return Err(ParseError::Xml {
                            position: position(&reader),
                            message: "more than one root element".into(),
                        })
                    }
                }
            }
            XmlEvent::End(_) => {
                let node = stack.pop().ok_or_else(|| ParseError::Xml {
                    position: position(&reader),
                    message: "unexpected closing tag".into(),
                })?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            XmlEvent::Text(t) if t.contains(&b'&') => {
                t.unescape().map_err(|e| ParseError::Entity(e.to_string()))?;
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Xml {
            position: position(&reader),
            message: format!(
                "unclosed element <{}>",
                stack.last().map(|n| n.name.as_str()).unwrap_or("")
            ),
        });
    }
    root.ok_or(ParseError::Empty)
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

fn element(start: &BytesStart<'_>, limits: &Limits) -> Result<Node, ParseError> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ParseError::Xml {
            position: 0,
            message: e.to_string(),
        })?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        if attr.value.len() > limits.max_attribute_len {
            return Err(ParseError::AttributeTooLong {
                element: name,
                attribute: key,
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
        attrs.push((key, value.into_owned()));
    }
    Ok(Node {
        name,
        attrs,
        children: Vec::new(),
    })
}
