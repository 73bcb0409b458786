//! A small TFTP client (RFC 1350, octet mode, read requests only): enough
//! for `tftp://host[:port]/path` sources on PXE-booted machines.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

const OP_RRQ: u16 = 1;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const BLOCK: usize = 512;
const RETRIES: u32 = 5;
/// Largest transfer accepted (a 16-bit block counter rolls over at 32 MiB).
const MAX_BYTES: usize = 32 << 20;

/// Read `path` from `host:port`. `timeout` bounds each wait for a packet.
pub fn read(host: &str, port: u16, path: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let server: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolving {host}: no address"))?;
    let bind = if server.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let sock = UdpSocket::bind(bind).map_err(|e| format!("binding UDP socket: {e}"))?;
    sock.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;

    let mut rrq = OP_RRQ.to_be_bytes().to_vec();
    rrq.extend_from_slice(path.trim_start_matches('/').as_bytes());
    rrq.push(0);
    rrq.extend_from_slice(b"octet\0");

    let mut out = Vec::new();
    let mut expect: u16 = 1;
    let mut last_sent = rrq.clone();
    let mut send_to = server;
    let mut peer: Option<SocketAddr> = None;
    let mut buf = [0u8; 4 + BLOCK];
    let mut tries = 0;
    sock.send_to(&rrq, send_to)
        .map_err(|e| format!("sending request: {e}"))?;
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                tries += 1;
                if tries > RETRIES {
                    return Err(format!("no answer after {RETRIES} retries (timeout {timeout:?})"));
                }
                sock.send_to(&last_sent, send_to)
                    .map_err(|e| format!("resending: {e}"))?;
                continue;
            }
            Err(e) => return Err(format!("receiving: {e}")),
        };
        // The server answers from a new port (its transfer id); stick to it.
        match peer {
            None if from.ip() == server.ip() => {
                peer = Some(from);
                send_to = from;
            }
            Some(p) if p == from => {}
            _ => continue,
        }
        if n < 4 {
            return Err("short packet".into());
        }
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        let arg = u16::from_be_bytes([buf[2], buf[3]]);
        match op {
            OP_DATA if arg == expect => {
                tries = 0;
                out.extend_from_slice(&buf[4..n]);
                if out.len() > MAX_BYTES {
                    return Err(format!("file larger than {MAX_BYTES} bytes"));
                }
                let mut ack = OP_ACK.to_be_bytes().to_vec();
                ack.extend_from_slice(&arg.to_be_bytes());
                sock.send_to(&ack, send_to).map_err(|e| format!("sending ack: {e}"))?;
                last_sent = ack;
                if n - 4 < BLOCK {
                    return Ok(out);
                }
                expect = expect.wrapping_add(1);
            }
            OP_DATA => {
                // Duplicate of an earlier block: re-acknowledge it.
                sock.send_to(&last_sent, send_to)
                    .map_err(|e| format!("resending ack: {e}"))?;
            }
            OP_ERROR => {
                let msg = String::from_utf8_lossy(&buf[4..n]).trim_end_matches('\0').to_string();
                return Err(format!("server error {arg}: {msg}"));
            }
            other => return Err(format!("unexpected TFTP opcode {other}")),
        }
    }
}
