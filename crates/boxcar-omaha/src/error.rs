//! Parse errors: each names what was refused and why, so a 400 answer tells the sender.

/// Why an Omaha document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is larger than [`crate::Limits::max_body`].
    #[error("parsing Omaha document: body of {len} bytes exceeds the limit of {max} bytes")]
    BodyTooLarge { len: usize, max: usize },
    /// A `<!DOCTYPE …>` was present; DTDs (and so custom entities) are refused.
    #[error("parsing Omaha document: document type declarations (DTD) are not allowed")]
    Doctype,
    /// An entity other than the five predefined XML ones, or a character reference, was used.
    #[error("parsing Omaha document: entity reference {0:?} is not allowed")]
    Entity(String),
    /// An attribute value is longer than [`crate::Limits::max_attribute_len`].
    #[error("parsing Omaha document: attribute {attribute} of <{element}> is {len} bytes, limit {max}")]
    AttributeTooLong {
        element: String,
        attribute: String,
        len: usize,
        max: usize,
    },
    /// More elements than [`crate::Limits::max_elements`], or nested deeper than allowed.
    #[error("parsing Omaha document: too many or too deeply nested elements (limit {max})")]
    TooManyElements { max: usize },
    /// The XML itself is malformed.
    #[error("parsing Omaha document at byte {position}: {message}")]
    Xml { position: u64, message: String },
    /// The body is not UTF-8.
    #[error("parsing Omaha document: body is not valid UTF-8")]
    Utf8,
    /// The root element is not the expected one.
    #[error("parsing Omaha document: expected root <{expected}>, found <{found}>")]
    UnexpectedRoot { expected: &'static str, found: String },
    /// No root element at all.
    #[error("parsing Omaha document: no root element")]
    Empty,
    /// A required attribute is missing.
    #[error("parsing Omaha document: <{element}> lacks attribute {attribute}")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    /// A numeric attribute did not parse.
    #[error("parsing Omaha document: attribute {attribute} of <{element}> is not a number: {value:?}")]
    InvalidNumber {
        element: &'static str,
        attribute: &'static str,
        value: String,
    },
}
