//! Tests of the physical-world socket: the parser, the line splitter, and a real server on a
//! Unix socket spoken to by [`PhysicsClient`] and by raw bytes.

use std::io::{BufRead, BufReader, Write};

use aex_tee::devices::{DeviceSpec, Holder};
use aex_tee::{Backend, NativePlatform};

use super::*;

/// A node's devices: its world, and the grants its backend hands out over it.
struct Devices {
    world: Arc<World>,
    grants: Arc<dyn DeviceGrants>,
}

fn devices() -> Devices {
    let specs = DeviceSpec::parse_all(&[
        "button=digital_in",
        "valve=digital_out",
        "soil=analog_in:100@35",
    ])
    .unwrap();
    let world = Arc::new(World::new(&specs).unwrap());
    let grants = NativePlatform.device_grants(&specs, world.clone()).unwrap();
    Devices { world, grants }
}

fn start(path: &Path, devices: &Devices) -> io::Result<PhysicsServer> {
    PhysicsServer::start(
        path.to_owned(),
        devices.world.clone(),
        devices.grants.clone(),
    )
}

fn server() -> (tempfile::TempDir, PathBuf, Devices, PhysicsServer) {
    let dir = tempfile::tempdir().unwrap();
    let path = physics_socket(dir.path());
    let devices = devices();
    let server = start(&path, &devices).unwrap();
    (dir, path, devices, server)
}

/// Sends raw `bytes` and reads `lines` answer lines.
fn raw(path: &Path, bytes: &[u8], lines: usize) -> Vec<String> {
    let mut stream = UnixStream::connect(path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut reader = BufReader::new(stream);
    (0..lines)
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line.trim_end().to_owned()
        })
        .collect()
}

#[test]
fn parser_accepts_the_four_commands() {
    assert_eq!(parse("list"), Ok(Request::List));
    assert_eq!(parse("  read   soil "), Ok(Request::Read("soil")));
    assert_eq!(parse("set soil 12"), Ok(Request::Set("soil", 12)));
    assert_eq!(parse("watch button"), Ok(Request::Watch("button")));
}

#[test]
fn parser_refuses_garbage_with_one_line_messages() {
    for (line, says) in [
        ("", "empty line"),
        ("   ", "empty line"),
        ("reboot", "unknown command `reboot`"),
        ("LIST", "unknown command"),
        ("read", "wrong number of words for `read`"),
        ("set soil", "wrong number of words for `set`"),
        ("set soil 1 2", "wrong number of words"),
        ("list all", "wrong number of words"),
        ("set soil -1", "`-1` is not a value"),
        ("set soil 99999999999", "not a value"),
        ("set soil x\u{7}", "not a value"),
        ("\u{0}\u{1b}[2J", "unknown command `\\u{0}\\u{1b}[2J`"),
    ] {
        let e = parse(line).unwrap_err();
        assert!(e.contains(says), "{line:?}: {e}");
        assert!(!e.contains('\n'), "{line:?}: {e}");
    }
    let long = "x".repeat(1000);
    let e = parse(&long).unwrap_err();
    assert!(e.len() < 200, "{e}");
}

#[test]
fn answers_follow_the_world() {
    let devices = devices();
    assert_eq!(
        answer(&devices.world, &*devices.grants, Request::List),
        "button digital_in 0 free\nsoil analog_in:100 35 free\nvalve digital_out 0 free\nend\n"
    );
    assert_eq!(
        answer(&devices.world, &*devices.grants, Request::Read("soil")),
        "ok 35\n"
    );
    assert_eq!(
        answer(&devices.world, &*devices.grants, Request::Set("soil", 12)),
        "ok 12\n"
    );
    assert_eq!(
        answer(&devices.world, &*devices.grants, Request::Read("soil")),
        "ok 12\n"
    );
    assert_eq!(
        answer(&devices.world, &*devices.grants, Request::Set("valve", 1)),
        "error device `valve` is an output: only the driver module it is granted to drives it\n"
    );
    assert_eq!(
        answer(&devices.world, &*devices.grants, Request::Set("soil", 101)),
        "error device `soil` takes values 0 to 100, not 101\n"
    );
    assert_eq!(
        answer(&devices.world, &*devices.grants, Request::Read("pump")),
        "error this node has no device `pump` (devices: button, soil, valve)\n"
    );
    devices
        .grants
        .claim(&Holder::new("ns", "drv"), &["valve".to_owned()])
        .unwrap();
    assert!(answer(&devices.world, &*devices.grants, Request::List)
        .contains("valve digital_out 0 held\n"));
}

#[test]
fn lines_are_bounded_and_over_long_ones_skipped() {
    let stop = AtomicBool::new(false);
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(b"list\r\n");
    input.extend_from_slice(&[b'a'; MAX_LINE]);
    input.extend_from_slice(b"\n");
    input.extend_from_slice(&[b'b'; 3 * MAX_LINE]);
    input.extend_from_slice(b"\nread soil\n\xff\xfe\n");
    input.extend_from_slice(&[b'c'; MAX_LINE + 1]);
    input.extend_from_slice(b"\nlast");
    let mut reader = &input[..];
    let mut lines = Lines::default();
    let mut got = Vec::new();
    loop {
        match lines.next(&mut reader, &stop).unwrap() {
            Incoming::Line(l) => got.push(l),
            Incoming::TooLong => got.push("<too long>".into()),
            Incoming::Closed => break,
        }
    }
    let a = "a".repeat(MAX_LINE);
    assert_eq!(
        got,
        [
            "list",
            a.as_str(),
            "<too long>",
            "read soil",
            "\u{fffd}\u{fffd}",
            "<too long>"
        ]
    );
}

#[test]
fn client_and_server_over_a_real_socket() {
    let (_dir, path, devices, server) = server();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Inside a directory only the node's user can enter, created before the socket.
    let dir = path.parent().unwrap();
    assert_ne!(dir, _dir.path());
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    let mut client = PhysicsClient::connect(&path).unwrap();
    let list = client.list().unwrap();
    assert_eq!(list, devices.world.list(&*devices.grants));
    assert_eq!(client.read("soil").unwrap(), 35);
    assert_eq!(client.set("soil", 20).unwrap(), 20);
    assert_eq!(devices.world.sense("soil").unwrap(), 20);
    let e = client.set("valve", 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "device `valve` is an output: only the driver module it is granted to drives it"
    );
    assert!(
        matches!(client.read("pump"), Err(PhysicsError::Refused(m)) if m.contains("no device `pump`"))
    );
    // A name that would smuggle a second command is refused before it is sent.
    assert!(matches!(
        client.read("soil\nset soil 0"),
        Err(PhysicsError::Name(DeviceSpecError::Name { .. }))
    ));
    assert_eq!(client.read("soil").unwrap(), 20);

    drop(server);
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
}

#[test]
fn garbage_and_over_long_lines_get_error_lines_and_the_connection_lives_on() {
    let (_dir, path, _devices, _server) = server();
    let mut bytes = b"hello\n\x00\x01\x02\nread\n".to_vec();
    bytes.extend_from_slice(&[b'z'; 4 * MAX_LINE]);
    bytes.extend_from_slice(b"\nread soil\n");
    let lines = raw(&path, &bytes, 5);
    assert!(
        lines[0].starts_with("error unknown command `hello`"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("error unknown command"), "{lines:?}");
    assert!(
        lines[2].starts_with("error wrong number of words"),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with("error line longer than 256 bytes"),
        "{lines:?}"
    );
    assert_eq!(lines[4], "ok 35");
}

#[test]
fn watch_reports_every_change_until_the_watcher_goes() {
    let (_dir, path, devices, _server) = server();
    let (tx, rx) = std::sync::mpsc::sync_channel(3);
    let watcher = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut client = PhysicsClient::connect(&path).unwrap();
            let mut count = 0;
            client
                .watch("button", |v| {
                    tx.send(v).unwrap();
                    count += 1;
                    count < 3
                })
                .unwrap();
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(next(), 0);
    devices.world.set("button", 1).unwrap();
    assert_eq!(next(), 1);
    // Unchanged values are no change.
    devices.world.set("button", 1).unwrap();
    devices.world.set("button", 0).unwrap();
    assert_eq!(next(), 0);
    watcher.join().unwrap();

    // An unknown device ends the watch with an error.
    let mut client = PhysicsClient::connect(&path).unwrap();
    assert!(matches!(
        client.watch("pump", |_| true),
        Err(PhysicsError::Refused(_))
    ));
}

#[test]
fn clients_beyond_the_limit_are_refused() {
    let (_dir, path, _devices, _server) = server();
    let held: Vec<_> = (0..MAX_CLIENTS)
        .map(|_| {
            let mut c = PhysicsClient::connect(&path).unwrap();
            c.read("soil").unwrap();
            c
        })
        .collect();
    let lines = raw(&path, b"list\n", 1);
    assert!(lines[0].starts_with("error too many clients"), "{lines:?}");
    drop(held);
    // The slots come back once the server notices the clients left.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines = raw(&path, b"read soil\n", 1);
        if lines[0] == "ok 35" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{lines:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_existing_socket_directory_is_narrowed_and_a_file_there_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = physics_socket(dir.path());
    let parent = path.parent().unwrap();
    std::fs::create_dir(parent).unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = start(&path, &devices()).unwrap();
    let mode = std::fs::metadata(parent).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(server);

    std::fs::remove_dir_all(parent).unwrap();
    std::fs::write(parent, b"not a directory").unwrap();
    assert!(start(&path, &devices()).is_err());
}
