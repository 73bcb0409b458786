//! A small multi-client TFTP server (RFC 1350 read requests, octet mode,
//! no options) on 127.0.0.1:0 for tests; stopped on drop.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct TftpServer {
    pub base: String,
    stop: Arc<AtomicBool>,
}

impl TftpServer {
    pub fn start(files: BTreeMap<String, String>) -> TftpServer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let files = Arc::new(files);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while !s2.load(Ordering::SeqCst) {
                let Ok((n, client)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 4 || buf[1] != 1 {
                    continue;
                }
                let name = buf[2..n].split(|b| *b == 0).next().unwrap_or_default();
                let name = String::from_utf8_lossy(name).trim_start_matches('/').to_string();
                let files = files.clone();
                std::thread::spawn(move || transfer(files.get(&name).map(|s| s.as_bytes().to_vec()), client));
            }
        });
        TftpServer {
            base: format!("tftp://127.0.0.1:{port}"),
            stop,
        }
    }
}

fn transfer(data: Option<Vec<u8>>, client: std::net::SocketAddr) {
    let x = UdpSocket::bind("127.0.0.1:0").unwrap();
    x.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let Some(data) = data else {
        let _ = x.send_to(b"\x00\x05\x00\x01File not found\x00", client);
        return;
    };
    let mut blocks: Vec<&[u8]> = data.chunks(512).collect();
    if data.len() % 512 == 0 {
        blocks.push(&[]);
    }
    let mut ack = [0u8; 516];
    for (i, b) in blocks.iter().enumerate() {
        let mut pkt = vec![0, 3];
        pkt.extend_from_slice(&((i + 1) as u16).to_be_bytes());
        pkt.extend_from_slice(b);
        for _ in 0..5 {
            let _ = x.send_to(&pkt, client);
            match x.recv_from(&mut ack) {
                Ok((n, _)) if n >= 4 && ack[1] == 4 && u16::from_be_bytes([ack[2], ack[3]]) == (i + 1) as u16 => break,
                _ => continue,
            }
        }
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
