//! A file the trust boundary re-reads when it changes (the client-CA bundle,
//! the callers file): the way Kubernetes updates a mounted Secret or
//! ConfigMap, or an operator replaces a file, takes effect without a restart.
//! A new version that cannot be loaded is logged and the last good one kept:
//! a broken file never opens the door wider, it only fails to narrow it.
//! A file that is gone is not broken but withdrawn: where it grants access
//! (the callers file) it is then read as granting none
//! ([`WatchedFile::revoked_when_gone`]), never as "keep the old list".

use std::{
    fmt,
    fs::{self, Metadata},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

/// What identifies one version of a file without reading it: a rotation
/// writes a new file (new inode, or new mtime and usually size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    /// The stamp of the file `path` names now (symlinks followed, so a
    /// Kubernetes `..data` swap is a new stamp).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta: Metadata = fs::metadata(path)?;
        Ok(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: inode(&meta),
        })
    }
}

#[cfg(unix)]
fn inode(meta: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &Metadata) -> u64 {
    0
}

/// Turns a file into the value it configures; errors name what is wrong.
type Loader<T> = Box<dyn Fn(&Path) -> Result<T, String> + Send + Sync>;

/// The value a file that is gone stands for, and what that means (for the log).
struct WhenGone<T> {
    value: Box<dyn Fn() -> T + Send + Sync>,
    meaning: &'static str,
}

struct State<T> {
    /// The stamp last looked at (loaded or refused); `None`: unreadable.
    seen: Option<FileStamp>,
    /// The last version that loaded.
    current: Arc<T>,
}

/// A value loaded from a file and reloaded when the file's [`FileStamp`]
/// changes. [`WatchedFile::current`] stats the file (one cheap syscall) and
/// reloads only on a change, so every caller sees a new version as soon as
/// it is on disk, with nothing to schedule or stop.
pub struct WatchedFile<T> {
    path: PathBuf,
    /// What the file is, for log lines ("callers file", "client CA bundle").
    what: &'static str,
    load: Loader<T>,
    /// What a deleted file means; `None`: the last good version stays.
    when_gone: Option<WhenGone<T>>,
    state: Mutex<State<T>>,
}

impl<T> fmt::Debug for WatchedFile<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedFile")
            .field("what", &self.what)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<T> WatchedFile<T> {
    /// Loads `path` once; an error here stops startup (there is no last good
    /// version to keep).
    pub fn open(
        path: &Path,
        what: &'static str,
        load: impl Fn(&Path) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        // Stamp first: a file replaced while we read it is read again next time.
        let seen = FileStamp::of(path).map_err(|err| format!("{}: {err}", path.display()))?;
        let current = Arc::new(load(path)?);
        Ok(Self {
            path: path.to_owned(),
            what,
            load: Box::new(load),
            when_gone: None,
            state: Mutex::new(State {
                seen: Some(seen),
                current,
            }),
        })
    }

    /// Once the file is gone (deleted, not merely unreadable), stands for
    /// `value()` rather than the last good version, logged at error level
    /// with `meaning`: for a file that grants access, its removal is a
    /// revocation. It stands until a valid file is back.
    #[must_use]
    pub fn revoked_when_gone(
        mut self,
        value: impl Fn() -> T + Send + Sync + 'static,
        meaning: &'static str,
    ) -> Self {
        self.when_gone = Some(WhenGone {
            value: Box::new(value),
            meaning,
        });
        self
    }

    /// The newest version that loaded, after reloading the file if it
    /// changed since the last look. A changed file that is unreadable or
    /// invalid is logged once (per change) and the previous version returned;
    /// a file that is gone, likewise unless [`WatchedFile::revoked_when_gone`].
    pub fn current(&self) -> Arc<T> {
        let looked = FileStamp::of(&self.path);
        let gone = looked
            .as_ref()
            .is_err_and(|err| err.kind() == std::io::ErrorKind::NotFound);
        let stamp = looked.ok();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if stamp != state.seen {
            state.seen = stamp;
            if let Some(fresh) = self.reload(stamp.is_some(), gone) {
                state.current = Arc::new(fresh);
            }
        }
        Arc::clone(&state.current)
    }

    fn reload(&self, readable: bool, gone: bool) -> Option<T> {
        let path = self.path.display();
        let what = self.what;
        if let (true, Some(when_gone)) = (gone, &self.when_gone) {
            let meaning = when_gone.meaning;
            tracing::error!(%path, "{what} is gone: {meaning}");
            return Some((when_gone.value)());
        }
        if !readable {
            tracing::error!(%path, "{what} cannot be read; keeping the last good version");
            return None;
        }
        match (self.load)(&self.path) {
            Ok(fresh) => {
                tracing::info!(%path, "{what} reloaded");
                Some(fresh)
            }
            Err(error) => {
                tracing::error!(%path, %error, "{what} changed but is invalid; keeping the last good version");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number_file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("value");
        let staged = dir.join(".value.new");
        fs::write(&staged, text).expect("write");
        fs::rename(&staged, &path).expect("rename");
        path
    }

    fn parse(path: &Path) -> Result<u32, String> {
        let text = fs::read_to_string(path).map_err(|err| err.to_string())?;
        text.trim()
            .parse()
            .map_err(|_| format!("not a number: {text}"))
    }

    #[test]
    fn a_change_is_seen_and_a_bad_version_keeps_the_last_good_one() {
        let dir = std::env::temp_dir().join(format!("otp-watched-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = number_file(&dir, "1");
        let watched = WatchedFile::open(&path, "number", parse).expect("valid");
        assert_eq!(*watched.current(), 1);

        number_file(&dir, "2");
        assert_eq!(*watched.current(), 2, "a replaced file is reloaded");
        number_file(&dir, "two");
        assert_eq!(*watched.current(), 2, "an invalid one is not");
        fs::remove_file(&path).expect("remove");
        assert_eq!(*watched.current(), 2, "nor a missing one");
        number_file(&dir, "3");
        assert_eq!(*watched.current(), 3, "the next good version is");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_grants_access_grants_none_once_it_is_gone() {
        let dir = std::env::temp_dir().join(format!("otp-watched-gone-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = number_file(&dir, "5");
        let watched = WatchedFile::open(&path, "number", parse)
            .expect("valid")
            .revoked_when_gone(|| 0, "nothing is granted");
        number_file(&dir, "five");
        assert_eq!(
            *watched.current(),
            5,
            "an invalid version keeps the last good one"
        );
        fs::remove_file(&path).expect("remove");
        assert_eq!(*watched.current(), 0, "a deleted one is a revocation");
        assert_eq!(*watched.current(), 0, "and stays one");
        number_file(&dir, "6");
        assert_eq!(*watched.current(), 6, "until a good version is back");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_invalid_first_version_is_an_error() {
        let dir = std::env::temp_dir().join(format!("otp-watched-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = number_file(&dir, "x");
        let err = WatchedFile::open(&path, "number", parse).expect_err("invalid");
        assert!(err.contains("not a number"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
