//! Omaha 3.0 wire types as Flatcar's `update_engine` speaks them.
//!
//! The update server parses [`Request`]s and writes [`Response`]s; the node's update agent does the
//! opposite. Both sides share these types so that the protocol is defined once. Parsing is hardened
//! for an Internet-facing server: document type declarations (and with them custom entities, the
//! "billion laughs" family) are refused, and bodies, attribute values, element counts and nesting depth
//! are bounded by [`Limits`].

mod codes;
mod error;
mod parse;
mod request;
mod response;
mod scan;
mod write;

pub use codes::{error_code_name, EventResult, EventType, ERROR_CODE_FLAGS_MASK};
pub use error::ParseError;
pub use parse::Limits;
pub use request::{AppRequest, Event, Os, Ping, Request, UpdateCheck};
pub use response::{Action, AppResponse, AppStatus, Manifest, Package, Response, UpdateCheckResponse, UpdateStatus};

/// The two request readers side by side, for the differential fuzz target: whatever the fast
/// reader accepts, the general reader must read the same way.
#[doc(hidden)]
pub mod differential {
    use crate::{Limits, ParseError, Request};

    /// The fast reader alone; `None` when the body is outside its subset.
    pub fn parse_plain(body: &[u8], limits: &Limits) -> Option<Result<Request, ParseError>> {
        Request::parse_plain(body, limits)
    }

    /// The general reader alone.
    pub fn parse_general(body: &[u8], limits: &Limits) -> Result<Request, ParseError> {
        Request::parse_general(body, limits)
    }
}

/// Flatcar Container Linux's Omaha application id, as update_engine sends it (with braces).
pub const FLATCAR_APP_ID: &str = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}";

/// Normalises an app id for comparison: lower case, braces added when missing.
///
/// Old clients and Nebraska's own tests send the id without braces; both spellings name one app.
pub fn normalize_app_id(id: &str) -> String {
    let trimmed = id.trim().trim_start_matches('{').trim_end_matches('}');
    let mut out = String::with_capacity(trimmed.len() + 2);
    out.push('{');
    out.extend(trimmed.chars().map(|c| c.to_ascii_lowercase()));
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_normalise_with_and_without_braces() {
        assert_eq!(normalize_app_id("e96281a6-D1AF-4bde-9a0a-97b76e56dc57"), FLATCAR_APP_ID);
        assert_eq!(normalize_app_id(FLATCAR_APP_ID), FLATCAR_APP_ID);
    }
}
