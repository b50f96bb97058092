//! One process at a time on an application's state: the exclusive OS lock on
//! `.aex/state.lock`, and who holds it.
//!
//! The lock is the operating system's (`flock`), released when the holder's file is closed,
//! also if the holder dies. Once it holds the lock, a process writes a note into the lock file:
//! its process id, command (its first argument only: the rest can hold a payload) and start
//! time ([`LockHolder`]). A second `aex` that finds the
//! lock held reads the note, so it can say whom it waits for ([`LockWait::on_wait`]) and a
//! person can decide to wait or to stop that command; with a limit ([`LockWait::limit`]) it
//! gives up with an error naming the holder. The note is only a note: read between another
//! process's lock and its write, it is empty, and the waiter says it does not know who.

use std::fmt;
use std::fs;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::StateError;

/// How often a bounded wait tries the lock again (an OS lock has no timed wait).
const RETRY: Duration = Duration::from_millis(50);

/// The longest command a note keeps (a program's first argument can be long too).
const MAX_COMMAND: usize = 300;

/// Who holds an application's state, as the holder wrote it into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// Its program and first argument, e.g. `aex deploy …` (the rest is withheld).
    pub command: String,
    /// When it took the lock, in seconds since the Unix epoch.
    pub since: u64,
}

impl LockHolder {
    /// This process, now.
    fn this_process() -> LockHolder {
        let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
        // The program by its file name: the path adds nothing a person needs.
        let program = args
            .next()
            .map(|p| {
                Path::new(&p)
                    .file_name()
                    .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        // The command's name, not its arguments: they can hold a payload (`aex output NAME
        // PAYLOAD`), and the note stays on disk after the process ends.
        let mut command = program;
        if let Some(first) = args.next() {
            command.push(' ');
            command.push_str(&first);
            if args.next().is_some() {
                command.push_str(" …");
            }
        }
        if command.len() > MAX_COMMAND {
            let mut end = MAX_COMMAND;
            while !command.is_char_boundary(end) {
                end -= 1;
            }
            command.truncate(end);
            command.push('…');
        }
        LockHolder {
            pid: std::process::id(),
            command,
            since: unix_now(),
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = unix_now().saturating_sub(self.since);
        write!(
            f,
            "process {} (`{}`, for {held} s)",
            self.pid,
            self.command.escape_debug()
        )
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How to wait when another process holds an application's state.
#[derive(Clone, Copy)]
pub struct LockWait<'a> {
    /// The longest wait; `None` waits for as long as it takes.
    pub limit: Option<Duration>,
    /// Told once, when the wait begins, who holds the lock (`None`: the holder has not written
    /// its note yet).
    pub on_wait: &'a dyn Fn(Option<&LockHolder>),
}

impl Default for LockWait<'_> {
    /// Wait as long as it takes, saying nothing.
    fn default() -> Self {
        LockWait {
            limit: None,
            on_wait: &|_| {},
        }
    }
}

impl fmt::Debug for LockWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockWait")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Takes the lock on `path` (created if missing), waiting as `wait` says, and writes this
/// process's note into it. The lock lasts as long as the returned file is open.
pub(super) fn acquire(path: &Path, wait: &LockWait<'_>) -> Result<fs::File, StateError> {
    let io = |action, source| StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io("open", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::Error(e)) => return Err(io("lock", e)),
        Err(fs::TryLockError::WouldBlock) => {
            let holder = read_note(&file);
            (wait.on_wait)(holder.as_ref());
            wait_for(&file, path, holder, wait.limit)?;
        }
    }
    write_note(&mut file);
    Ok(file)
}

/// Waits for the lock on `file` (held by `holder`, as far as its note says), at most `limit`.
fn wait_for(
    file: &fs::File,
    path: &Path,
    holder: Option<LockHolder>,
    limit: Option<Duration>,
) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        action: "lock",
        path: path.to_path_buf(),
        source,
    };
    let Some(limit) = limit else {
        return file.lock().map_err(io);
    };
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() >= limit => {
                // The note as it is now: the process holding the lock may be another by now.
                let holder = read_note(file).or(holder);
                return Err(StateError::Busy {
                    path: path.to_path_buf(),
                    holder,
                    waited: limit,
                });
            }
            Err(fs::TryLockError::WouldBlock) => std::thread::sleep(RETRY),
        }
    }
}

/// The holder's note, if it wrote one that reads.
fn read_note(mut file: &fs::File) -> Option<LockHolder> {
    file.rewind().ok()?;
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Replaces the note with this process's. A note that cannot be written costs only the
/// precision of another process's message, so a failure is ignored.
fn write_note(file: &mut fs::File) {
    let Ok(note) = serde_json::to_vec(&LockHolder::this_process()) else {
        return;
    };
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(&note));
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn a_waiter_is_told_who_holds_the_lock_and_gives_up_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.lock");
        let held = acquire(&path, &LockWait::default()).unwrap();
        let told = RefCell::new(None);
        let on_wait = |h: Option<&LockHolder>| *told.borrow_mut() = Some(h.cloned());
        let wait = LockWait {
            limit: Some(Duration::from_millis(150)),
            on_wait: &on_wait,
        };
        let started = Instant::now();
        let err = acquire(&path, &wait).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(150));
        // An OS lock is per open file: this process's second open waits like another's.
        let holder = told.borrow().clone().flatten().expect("told who holds it");
        assert_eq!(holder.pid, std::process::id());
        assert!(holder.command.contains("aex_deploy"), "{holder:?}");
        // The program and its first argument at most: later ones can hold a payload.
        let words: Vec<&str> = holder.command.split(' ').collect();
        assert!(
            words.len() <= 2 || (words.len() == 3 && words[2] == "…"),
            "{holder:?}"
        );
        let StateError::Busy {
            holder: Some(named),
            ..
        } = &err
        else {
            panic!("not a busy error naming the holder: {err:?}");
        };
        assert_eq!(named.pid, holder.pid);
        let text = err.to_string();
        assert!(
            text.contains(&format!("process {}", std::process::id())) && text.contains("150 ms"),
            "{text}"
        );
        // Once the holder lets go, the lock is taken at once and the note is the new holder's.
        drop(held);
        let again = acquire(&path, &wait).unwrap();
        assert_eq!(read_note(&again).unwrap().pid, std::process::id());
    }

    #[test]
    fn a_waiter_without_a_limit_gets_the_lock_once_it_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.lock");
        let held = acquire(&path, &LockWait::default()).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let on_wait = |h: Option<&LockHolder>| {
                    let _ = tx.send(h.map(|h| h.pid));
                };
                let wait = LockWait {
                    limit: None,
                    on_wait: &on_wait,
                };
                acquire(&path, &wait).map(drop)
            })
        };
        // Told before the lock is free: the wait has begun.
        let told = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(told, Some(std::process::id()));
        drop(held);
        waiter.join().unwrap().unwrap();
    }
}
