//! Whether a local node's address is free, and if not, which program listens there: so that
//! `aex up` names what is in the way before it builds anything, instead of a node that exits
//! with the reason in its log.
//!
//! The program is found as `ss -ltnp` would find it: the listening socket's inode from
//! `/proc/net/tcp` (or `tcp6`), then the process holding a descriptor of that socket under
//! `/proc/*/fd`. Only processes of this user can be looked into; for others the error says the
//! port is in use without naming who.

use std::fs;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener};

/// The state of a listening socket in `/proc/net/tcp` (`TCP_LISTEN`).
const LISTEN: &str = "0A";

/// Why `addr` cannot be listened on now, naming the program that does if it can be found;
/// `None` if it is free.
pub(super) fn taken(addr: SocketAddr) -> Option<String> {
    let err = match TcpListener::bind(addr) {
        Ok(_) => return None,
        Err(e) => e,
    };
    if err.kind() != std::io::ErrorKind::AddrInUse {
        return Some(format!("cannot listen there: {err}"));
    }
    Some(match listener(addr) {
        Some((pid, command)) => format!("process {pid} (`{command}`) listens there"),
        None => "another program listens there (not one of this user's, or it cannot be \
                 told which)"
            .to_owned(),
    })
}

/// The process id and command name of the process listening on `addr`, if it can be found.
fn listener(addr: SocketAddr) -> Option<(u32, String)> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .find_map(|text| listening_inode(&text, addr))?;
    let socket = format!("socket:[{inode}]");
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == socket.as_str()));
        if holds {
            let command = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some((pid, command.trim().to_owned()));
        }
    }
    None
}

/// The inode of the socket listening on `addr` (or on every address, at its port) in a
/// `/proc/net/tcp` or `tcp6` table.
fn listening_inode(table: &str, addr: SocketAddr) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        let (ip, port) = local.split_once(':')?;
        let matches = *state == LISTEN
            && u16::from_str_radix(port, 16).ok()? == addr.port()
            && parse_ip(ip).is_some_and(|ip| ip.is_unspecified() || same_ip(ip, addr.ip()));
        matches.then(|| inode.parse().ok()).flatten()
    })
}

/// Whether `a` (from the table) is `b`, an IPv4 address also in its IPv6-mapped form.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canonical(a) == canonical(b)
}

/// An address as the kernel prints it in `/proc/net/tcp*`: 32-bit words in hex, each in the
/// machine's byte order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| {
        let text = hex.get(i * 8..i * 8 + 8)?;
        u32::from_str_radix(text, 16).ok().map(u32::to_ne_bytes)
    };
    match hex.len() {
        8 => Some(IpAddr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_this_process_is_named_and_a_free_port_is_free() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let why = taken(addr).expect("the port is taken");
        assert!(
            why.contains(&format!("process {} (", std::process::id())),
            "{why}"
        );
        drop(held);
        assert_eq!(taken(addr), None);
    }

    #[test]
    fn kernel_addresses_read_in_the_machines_byte_order() {
        let loopback = u32::from_ne_bytes([127, 0, 0, 1]);
        let text = format!("{loopback:08X}");
        assert_eq!(parse_ip(&text), Some(IpAddr::from([127, 0, 0, 1])));
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: {text}:1C8F 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1\n"
        );
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(listening_inode(&table, at(7311)), Some(424242));
        assert_eq!(listening_inode(&table, at(7312)), None);
    }
}
