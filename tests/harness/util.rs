//! Small helpers: per-test directories, directory walks, waiting, cleanup at exit.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A per-test scratch directory, removed on drop unless the test panicked (then it is kept and
/// its path printed, so a failure can be inspected).
#[derive(Debug)]
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    /// Creates `gomodproxy-e2e-<name>-XXXX` under the system temp dir.
    pub fn new(name: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gomodproxy-e2e-{name}-"))
            .tempdir()
            .expect("create test dir");
        let path = dir.path().to_path_buf();
        TestDir {
            dir: Some(dir),
            path,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh subdirectory.
    pub fn sub(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::create_dir_all(&p).expect("create subdir");
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() {
                eprintln!("test dir kept for inspection: {}", dir.keep().display());
            } else {
                make_writable(&self.path);
                drop(dir);
            }
        }
    }
}

/// Makes a tree writable again (the go command makes module cache dirs read-only).
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&entry.path());
        }
    }
}

/// Every regular file under `root` whose path relative to root passes `keep`, with its size,
/// sorted. Relative paths use `/`.
pub fn walk(root: &Path, keep: impl Fn(&str) -> bool) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .to_string();
            if ft.is_dir() {
                if keep(&format!("{rel}/")) {
                    stack.push(path);
                }
            } else if keep(&rel) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((path, len));
            }
        }
    }
    out.sort();
    out
}

/// Files of a storage root, as relative paths with sizes, ignoring the root's `.tmp` dir (the
/// fs backend's staging area).
pub fn stored_files(root: &Path) -> Vec<(String, u64)> {
    walk(root, |rel| !(rel == ".tmp/" || rel.starts_with(".tmp/")))
        .into_iter()
        .map(|(p, len)| {
            (
                p.strip_prefix(root).unwrap().to_string_lossy().to_string(),
                len,
            )
        })
        .collect()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

static AT_EXIT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static KILL_AT_EXIT: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn remove_registered() {
    // Processes first: a server must not keep writing into a directory being removed.
    if let Ok(pids) = KILL_AT_EXIT.lock() {
        for &pid in pids.iter() {
            // SAFETY: kill(2) and waitpid(2) on children this process started.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
        }
    }
    if let Ok(dirs) = AT_EXIT.lock() {
        for d in dirs.iter() {
            make_writable(d);
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

static REGISTER: std::sync::Once = std::sync::Once::new();

fn register_at_exit() {
    REGISTER.call_once(|| {
        // SAFETY: registering a plain extern "C" fn with no captured state.
        unsafe {
            libc::atexit(remove_registered);
        }
    });
}

/// Removes `dir` when the process exits (the libtest runner exits through `exit`, which runs
/// `atexit` handlers), for process-wide shared fixtures that no test owns.
pub fn remove_at_exit(dir: PathBuf) {
    register_at_exit();
    AT_EXIT.lock().expect("at-exit list").push(dir);
}

/// Kills the child process `pid` when the process exits (before the directories of
/// [`remove_at_exit`] are removed), for servers of process-wide shared fixtures.
pub fn kill_at_exit(pid: u32) {
    register_at_exit();
    KILL_AT_EXIT.lock().expect("at-exit list").push(pid);
}
