//! `prefeval healthcheck`: a dependency-free HTTP probe, so a minimal container image (no shell,
//! no curl) can still run a health check.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::HealthcheckArgs;

/// Ok when the service answers the probe with 200.
pub fn probe(args: &HealthcheckArgs) -> Result<(), String> {
    let addr = reachable(args.listen);
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n", args.path);
    stream.write_all(request.as_bytes()).map_err(|e| format!("cannot send the probe: {e}"))?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).map_err(|e| format!("no answer from {addr}: {e}"))?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split(' ').nth(1).unwrap_or("");
    if status == "200" { Ok(()) } else { Err(format!("{addr}{} answered {status:?}", args.path)) }
}

/// A wildcard listen address (0.0.0.0, ::) is probed on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port()),
        _ => addr,
    }
}
