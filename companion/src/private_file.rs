//! Files and directories for the user's eyes only, on every OS: the event log (payees,
//! amounts, customer ids), the log file, the sealed pairing store and test keys.
//!
//! Unix: directories 0700, files 0600, and a file found readable by others is narrowed.
//! Windows: a protected DACL (nothing inherited from the parent) granting the current user
//! alone full access, set on every open, since the per-user profile's default ACL also admits
//! SYSTEM and the Administrators group and a folder elsewhere may admit anyone. Elsewhere the
//! OS default applies.

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
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(windows)]
    windows::owner_only(dir, true)?;
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
    let file = options.open(path)?;
    narrow(path)?;
    Ok(file)
}

/// Narrows an existing file to the user alone.
pub fn narrow(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(windows)]
    windows::owner_only(path, false)?;
    #[cfg(not(any(unix, windows)))]
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
    //! The Win32 security API has no safe wrapper among maintained crates; the unsafe calls
    //! are confined here, each with the buffer it needs and the handle it must free.

    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_SUCCESS, GENERIC_ALL, HANDLE, LocalFree,
    };
    use windows_sys::Win32::Security::Authorization::{
        EXPLICIT_ACCESS_W, NO_MULTIPLE_TRUSTEE, SE_FILE_OBJECT, SET_ACCESS, SetEntriesInAclW,
        SetNamedSecurityInfoW, TRUSTEE_IS_SID, TRUSTEE_IS_USER, TRUSTEE_W,
    };
    use windows_sys::Win32::Security::{
        ACL, DACL_SECURITY_INFORMATION, GetTokenInformation, NO_INHERITANCE,
        PROTECTED_DACL_SECURITY_INFORMATION, SUB_CONTAINERS_AND_OBJECTS_INHERIT, TOKEN_QUERY,
        TOKEN_USER, TokenUser,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    /// Replaces the DACL of `path` with one entry: the current user, full access; for a
    /// directory the entry is inherited by what is created in it.
    pub fn owner_only(path: &Path, directory: bool) -> io::Result<()> {
        let user = CurrentUser::get()?;
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
        let access = EXPLICIT_ACCESS_W {
            grfAccessPermissions: GENERIC_ALL,
            grfAccessMode: SET_ACCESS,
            grfInheritance: if directory {
                SUB_CONTAINERS_AND_OBJECTS_INHERIT
            } else {
                NO_INHERITANCE
            },
            Trustee: TRUSTEE_W {
                pMultipleTrustee: std::ptr::null_mut(),
                MultipleTrusteeOperation: NO_MULTIPLE_TRUSTEE,
                TrusteeForm: TRUSTEE_IS_SID,
                TrusteeType: TRUSTEE_IS_USER,
                ptstrName: user.sid().cast(),
            },
        };
        let mut acl: *mut ACL = std::ptr::null_mut();
        // SAFETY: `access` is one initialised entry whose SID points into `user`, alive for
        // the call; on success `acl` is a LocalAlloc'd ACL freed below.
        let status = unsafe { SetEntriesInAclW(1, &access, std::ptr::null(), &mut acl) };
        if status != ERROR_SUCCESS {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        // SAFETY: `wide` is NUL-terminated, `acl` is the valid ACL built above; owner, group
        // and SACL are not changed (null).
        let status = unsafe {
            SetNamedSecurityInfoW(
                wide.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                acl,
                std::ptr::null(),
            )
        };
        // SAFETY: `acl` came from SetEntriesInAclW and is freed once.
        unsafe { LocalFree(acl.cast()) };
        if status != ERROR_SUCCESS {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        Ok(())
    }

    /// The process token's TOKEN_USER, which holds the user's SID.
    struct CurrentUser {
        buffer: Vec<u64>,
    }

    impl CurrentUser {
        fn get() -> io::Result<Self> {
            let mut token: HANDLE = std::ptr::null_mut();
            // SAFETY: the pseudo-handle of the current process needs no closing; `token` is
            // written on success and closed below.
            if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
                return Err(io::Error::last_os_error());
            }
            let mut needed = 0u32;
            // SAFETY: a size query (null buffer, length 0) only writes `needed`.
            unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut needed) };
            // u64 elements keep TOKEN_USER's pointer field aligned.
            let mut buffer = vec![0u64; (needed as usize).div_ceil(8).max(1)];
            let length = u32::try_from(buffer.len() * 8).unwrap_or(u32::MAX);
            // SAFETY: `buffer` holds `length` writable bytes.
            let ok = unsafe {
                GetTokenInformation(
                    token,
                    TokenUser,
                    buffer.as_mut_ptr().cast(),
                    length,
                    &mut needed,
                )
            };
            let error = io::Error::last_os_error();
            // SAFETY: `token` was opened above and is closed once.
            unsafe { CloseHandle(token) };
            if ok == 0 {
                return Err(error);
            }
            Ok(Self { buffer })
        }

        fn sid(&self) -> *mut core::ffi::c_void {
            // SAFETY: GetTokenInformation(TokenUser) filled the buffer with a TOKEN_USER whose
            // SID points into the same buffer, which lives as long as `self`.
            unsafe { (*self.buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid }
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
