//! `file://` upstreams: a directory in GOPROXY layout, read without ever leaving it.
//!
//! Every path component below the directory is opened with `O_NOFOLLOW` relative to its parent
//! (`openat`), so a symbolic link anywhere under the directory — to `/etc/passwd`, or a linked
//! directory pointing elsewhere — is refused instead of followed, and nothing can swap a
//! component for a link between a check and the open. The final component must be a regular
//! file (a FIFO or device is refused without blocking: it is opened non-blocking and checked with
//! `fstat` before any read). The directory itself may be a link: that is the operator's choice.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why a file could not be opened under the upstream directory.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// It does not exist.
    NotFound,
    /// A component is a symbolic link, or the file is not a regular file.
    NotRegular(&'static str),
    /// Another I/O failure.
    Io(io::Error),
}

/// Opens `rel` (slash-separated, validated GOPROXY layout path) under `root`. Blocking.
pub(crate) fn open_beneath(root: &Path, rel: &str) -> Result<(File, u64), OpenError> {
    let components: Vec<&str> = rel.split('/').collect();
    if components
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == ".." || c.contains('\0'))
    {
        return Err(OpenError::NotRegular(
            "the path has an empty, `.` or `..` element",
        ));
    }
    let mut dir: OwnedFd = File::open(root).map_err(io_error)?.into();
    let (last, parents) = components.split_last().ok_or(OpenError::NotFound)?;
    for name in parents {
        dir = openat(
            &dir,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a link gives ELOOP; O_DIRECTORY on a link or a file ENOTDIR.
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => OpenError::NotRegular(
                "a directory on its path is a symbolic link or not a directory",
            ),
            _ => io_error(e),
        })?;
    }
    let fd = openat(
        &dir,
        last,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => OpenError::NotRegular("it is a symbolic link"),
        _ => io_error(e),
    })?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotRegular("it is not a regular file"));
    }
    clear_nonblock(&file).map_err(OpenError::Io)?;
    Ok((file, meta.len()))
}

fn io_error(e: io::Error) -> OpenError {
    if e.kind() == io::ErrorKind::NotFound {
        OpenError::NotFound
    } else {
        OpenError::Io(e)
    }
}

fn openat(dir: &OwnedFd, name: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let name = CString::new(std::ffi::OsStr::new(name).as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `dir` is an open descriptor, `name` a NUL-terminated string; the returned
    // descriptor is owned by nobody else.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an open descriptor with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn regular_files_open_and_links_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("example.com/m/@v")).unwrap();
        std::fs::write(
            root.join("example.com/m/@v/v1.0.0.mod"),
            "module example.com/m\n",
        )
        .unwrap();
        let (mut f, len) = open_beneath(&root, "example.com/m/@v/v1.0.0.mod").unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!((s.as_str(), len), ("module example.com/m\n", 21));

        // A file link out of the root.
        symlink("/etc/passwd", root.join("example.com/m/@v/v1.1.0.mod")).unwrap();
        assert!(matches!(
            open_beneath(&root, "example.com/m/@v/v1.1.0.mod"),
            Err(OpenError::NotRegular(_))
        ));
        // A file link inside the root is refused as well: no links are followed.
        symlink("v1.0.0.mod", root.join("example.com/m/@v/v1.2.0.mod")).unwrap();
        assert!(matches!(
            open_beneath(&root, "example.com/m/@v/v1.2.0.mod"),
            Err(OpenError::NotRegular(_))
        ));
        // A directory link on the way.
        let outside = dir.path().join("outside/@v");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("v1.0.0.mod"), "module evil\n").unwrap();
        symlink(dir.path().join("outside"), root.join("example.com/evil")).unwrap();
        assert!(matches!(
            open_beneath(&root, "example.com/evil/@v/v1.0.0.mod"),
            Err(OpenError::NotRegular(_))
        ));
        // A FIFO: refused without blocking.
        let fifo = root.join("example.com/m/@v/v1.3.0.mod");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            open_beneath(&root, "example.com/m/@v/v1.3.0.mod"),
            Err(OpenError::NotRegular(_))
        ));
        // A directory where a file is expected.
        assert!(matches!(
            open_beneath(&root, "example.com/m/@v"),
            Err(OpenError::NotRegular(_))
        ));
        assert!(matches!(
            open_beneath(&root, "example.com/none/@v/v1.0.0.mod"),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            open_beneath(&root, "example.com/../x"),
            Err(OpenError::NotRegular(_))
        ));
    }
}
