//! A recording relay between `egressc sync` and kube-testserver: bytes pass through unchanged
//! both ways, and the request line of every HTTP/1.1 request the client sends is recorded, so a
//! test can check each API call against the RBAC that `egressc install` renders.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as sent: method and target (path and query).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub method: String,
    pub target: String,
}

/// The relay; it runs until the test ends.
pub struct Relay {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Relay {
    /// Listens on 127.0.0.1 and forwards every connection to `upstream_port` on 127.0.0.1.
    pub async fn start(upstream_port: u16) -> Relay {
        Relay::start_on(std::net::Ipv4Addr::LOCALHOST.into(), upstream_port).await
    }

    /// [`Relay::start`] listening on `address` (e.g. a network namespace's bridge address).
    pub async fn start_on(address: std::net::IpAddr, upstream_port: u16) -> Relay {
        let listener = TcpListener::bind((address, 0)).await.expect("relay binds");
        let port = listener.local_addr().expect("relay address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, recorded.clone()));
            }
        });
        Relay { port, requests }
    }

    /// Every request recorded so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn relay(client: TcpStream, server: TcpStream, requests: Arc<Mutex<Vec<Request>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let responses = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut parser = RequestParser::default();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buffer[..n];
        for request in parser.feed(chunk) {
            requests.lock().expect("lock").push(request);
        }
        if server_write.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = server_write.shutdown().await;
    let _ = responses.await;
}

/// Splits a client byte stream into requests: head up to the blank line, then a body of
/// `Content-Length` bytes (kube sends whole bodies, never chunked ones).
#[derive(Default)]
struct RequestParser {
    pending: Vec<u8>,
    body_left: usize,
}

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Request> {
        self.pending.extend_from_slice(bytes);
        let mut found = Vec::new();
        loop {
            if self.body_left > 0 {
                let skip = self.body_left.min(self.pending.len());
                self.pending.drain(..skip);
                self.body_left -= skip;
                if self.body_left > 0 {
                    return found;
                }
            }
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return found;
            };
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            self.pending.drain(..end + 4);
            let mut lines = head.lines();
            let mut parts = lines.next().unwrap_or_default().split(' ');
            found.push(Request {
                method: parts.next().unwrap_or_default().to_owned(),
                target: parts.next().unwrap_or_default().to_owned(),
            });
            for line in lines {
                let lower = line.to_ascii_lowercase();
                assert!(
                    !lower.starts_with("transfer-encoding:"),
                    "chunked request bodies are not handled by the relay: {line}"
                );
                if let Some(length) = lower.strip_prefix("content-length:") {
                    self.body_left = length.trim().parse().expect("content length");
                }
            }
        }
    }
}
