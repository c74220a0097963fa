//! `prefeval healthcheck`: a dependency-free HTTP probe, so a minimal container image (no shell,
//! no curl) can still run a health check.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Args;

#[derive(Clone, Debug, Args)]
pub struct HealthcheckArgs {
    /// Address of the service to probe (port 0.0.0.0 is probed on 127.0.0.1).
    #[arg(long, env = "PREFEVAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The service's metrics listener; when set, it is probed instead of --listen: it serves the
    /// probes on connection slots of its own, which clients of the main listener cannot exhaust.
    #[arg(long, env = "PREFEVAL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Path to probe.
    #[arg(long, default_value = "/healthz")]
    pub path: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// Longest status line the probe reads, CRLF included; a longer one is not an HTTP answer.
const MAX_STATUS_LINE_BYTES: usize = 1024;

/// Ok when the service answers the probe with 200.
pub fn probe(args: &HealthcheckArgs) -> Result<(), String> {
    let addr = reachable(args.metrics_listen.unwrap_or(args.listen));
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n", args.path);
    stream.write_all(request.as_bytes()).map_err(|e| format!("cannot send the probe: {e}"))?;
    let status_line = read_status_line(&mut stream, deadline).map_err(|e| format!("no answer from {addr}: {e}"))?;
    if status_code(&status_line) == Some("200") {
        Ok(())
    } else {
        Err(format!("{addr}{} answered {status_line:?}", args.path))
    }
}

/// Reads up to the first CRLF, however the answer is split into reads, within `deadline` (the
/// whole line, not each read) and [`MAX_STATUS_LINE_BYTES`]. Returns the line without its CRLF.
fn read_status_line(stream: &mut TcpStream, deadline: Instant) -> Result<String, String> {
    let mut line = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    loop {
        if let Some(end) = line.windows(2).position(|pair| pair == b"\r\n") {
            line.truncate(end);
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        if line.len() >= MAX_STATUS_LINE_BYTES {
            return Err(format!("no status line in the first {MAX_STATUS_LINE_BYTES} bytes"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out before the status line was complete".to_string());
        }
        stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        // Never past the bound, so a line that ends exactly at it is still read whole.
        let room = (MAX_STATUS_LINE_BYTES - line.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => {
                return Err(format!(
                    "connection closed after {:?}, before the status line was complete",
                    String::from_utf8_lossy(&line)
                ));
            }
            Ok(read) => line.extend_from_slice(&chunk[..read]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("timed out before the status line was complete".to_string());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The status code of an `HTTP/1.x <code> <reason>` status line; None for anything else.
fn status_code(line: &str) -> Option<&str> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    let is_http1 = version.strip_prefix("HTTP/1.").is_some_and(|minor| minor.len() == 1);
    (is_http1 && code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// A wildcard listen address (0.0.0.0, ::) is probed on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port()),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// Serves one connection on 127.0.0.1: reads the request head, then writes the answer in
    /// `pieces`, pausing between them so that each arrives as its own read; returns the head.
    fn serve_once(pieces: Vec<&'static [u8]>) -> (HealthcheckArgs, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds a free port");
        let listen = listener.local_addr().expect("has an address");
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("the probe connects");
            let mut reader = BufReader::new(stream.try_clone().expect("clones the socket"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).expect("reads the request") == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut stream = stream;
            stream.set_nodelay(true).expect("sets TCP_NODELAY");
            for piece in pieces {
                // The probe may already have given up (a bad status line); that is its answer.
                if stream.write_all(piece).and_then(|()| stream.flush()).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(30));
            }
            head
        });
        (HealthcheckArgs { listen, metrics_listen: None, path: "/healthz".to_string(), timeout_secs: 5 }, server)
    }

    #[test]
    fn a_status_line_split_across_reads_is_read_whole() {
        let (args, server) =
            serve_once(vec![b"H", b"TTP/1.", b"1 2", b"0", b"0 O", b"K\r", b"\ncontent-length: 2\r\n\r\nok"]);
        assert_eq!(probe(&args), Ok(()));
        let head = server.join().expect("server thread");
        assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "request head: {head:?}");
    }

    #[test]
    fn the_metrics_listener_is_probed_when_one_is_set() {
        let (mut args, server) = serve_once(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]);
        // Nothing listens on the main address; the metrics listener answers.
        args.metrics_listen = Some(args.listen);
        args.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        assert_eq!(probe(&args), Ok(()));
        server.join().expect("server thread");
    }

    #[test]
    fn a_503_fails_the_probe() {
        let (args, server) =
            serve_once(vec![b"HTTP/1.1 5", b"03 Service Unavailable\r\n", b"content-length: 0\r\n\r\n"]);
        let error = probe(&args).expect_err("503 is not healthy");
        assert!(error.contains("503 Service Unavailable"), "{error}");
        server.join().expect("server thread");
    }

    #[test]
    fn an_answer_closed_before_the_line_ends_fails_the_probe() {
        let (args, server) = serve_once(vec![b"HTTP/1.1 200"]);
        let error = probe(&args).expect_err("an incomplete status line is no answer");
        assert!(error.contains("before the status line was complete"), "{error}");
        server.join().expect("server thread");
    }

    #[test]
    fn status_codes_are_read_only_from_http1_status_lines() {
        assert_eq!(status_code("HTTP/1.1 200 OK"), Some("200"));
        assert_eq!(status_code("HTTP/1.0 200"), Some("200"));
        assert_eq!(status_code("HTTP/1.1 503 Service Unavailable"), Some("503"));
        assert_eq!(status_code("HTTP/2 200"), None);
        assert_eq!(status_code("HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code("SSH-2.0-OpenSSH 200"), None);
        assert_eq!(status_code(""), None);
    }
}
