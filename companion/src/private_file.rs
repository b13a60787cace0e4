//! Files and directories for the user's eyes only, on every OS: the event log (payees,
//! amounts, customer ids), the log file, the sealed pairing store and test keys.
//!
//! Unix: directories 0700, files 0600, and a file found readable by others is narrowed.
//! Windows: what this module creates gets a protected ACL (nothing inherited from the parent)
//! granting the current user alone full access, since the profile's default ACL also admits
//! SYSTEM and the Administrators group and a folder elsewhere may admit anyone. It is set by
//! Windows' own `icacls` (from the system directory, never from PATH): the Win32 security API
//! would need `unsafe`, which this workspace forbids. Files that already existed keep their
//! ACL (checking one needs that API too). Elsewhere the OS default applies.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// How [`open`] treats what the file already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// Keep it and write at the end.
    Append,
    /// Empty it first.
    Truncate,
}

/// Creates `dir` and its missing parents; `dir` itself is for the user alone.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    #[cfg(windows)]
    let existed = dir.exists();
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(windows)]
    if !existed {
        windows::owner_only(dir, true)?;
    }
    Ok(())
}

/// Opens `path` for writing, created for the user alone; an existing file others could read
/// is narrowed before anything is written to it.
pub fn open(path: &Path, how: Open) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    match how {
        Open::Append => options.append(true),
        Open::Truncate => options.write(true).truncate(true),
    };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    #[cfg(windows)]
    let existed = path.exists();
    let file = options.open(path)?;
    #[cfg(unix)]
    narrow(path)?;
    #[cfg(windows)]
    if !existed {
        windows::owner_only(path, false)?;
    }
    Ok(file)
}

/// Narrows an existing file to the user alone (Unix; on Windows the ACL set at creation stays).
pub fn narrow(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `bytes` to `path` for the user alone, atomically: a temporary file beside it, synced,
/// then renamed over it, so a crash leaves the old contents or the new, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = open(&tmp, Open::Truncate)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    /// Replaces the ACL of `path` with one entry: the current user, full control; for a
    /// directory the entry is inherited by what is created in it.
    pub fn owner_only(path: &Path, directory: bool) -> io::Result<()> {
        let user = match (std::env::var("USERDOMAIN"), std::env::var("USERNAME")) {
            (Ok(domain), Ok(name)) if !name.is_empty() => format!("{domain}\\{name}"),
            _ => {
                return Err(io::Error::other(
                    "USERNAME is not set: cannot name the owner",
                ));
            }
        };
        let rights = if directory { "(OI)(CI)F" } else { "F" };
        let system = std::env::var_os("SystemRoot")
            .map_or_else(|| PathBuf::from(r"C:\Windows"), PathBuf::from);
        let status = Command::new(system.join("System32").join("icacls.exe"))
            .arg(path)
            .args(["/inheritance:r", "/grant:r"])
            .arg(format!("{user}:{rights}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "icacls could not limit {} to {user} ({status})",
                path.display()
            )))
        }
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::expect_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn what_is_created_is_for_the_user_alone_and_a_readable_file_is_narrowed() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("state/inner");
        create_dir(&dir).expect("dir");
        assert_eq!(mode(&dir), 0o700);
        let path = dir.join("events.log");
        open(&path, Open::Append)
            .expect("open")
            .write_all(b"a")
            .expect("write");
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        open(&path, Open::Append)
            .expect("reopen")
            .write_all(b"b")
            .expect("write");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"ab");
        write_atomic(&path, b"new").expect("atomic");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
    }
}
