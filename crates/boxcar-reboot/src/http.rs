//! The tiny blocking HTTP/1.1 client shared by the etcd gateway and FleetLock clients.

use std::time::Duration;

/// A client with a whole-request timeout and non-2xx statuses returned, not raised.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// GETs `url`; returns status and body text, or the transport error as text.
pub(crate) fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> Result<(u16, String), String> {
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().map_err(|e| e.to_string())?;
    read_body(&mut resp).map(|text| (resp.status().as_u16(), text))
}

fn read_body(resp: &mut ureq::http::Response<ureq::Body>) -> Result<String, String> {
    resp.body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())
}

/// POSTs `body` as JSON; returns status and body text, or the transport error as text.
pub(crate) fn post_json(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, read_body(&mut resp)?))
}
