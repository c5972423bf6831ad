//! Whether anything committed to the file since a moment, told in a microsecond: in
//! WAL mode every commit, by any process, rewrites the header of the WAL-index
//! (the `-shm` file; see "WAL-index Format" in SQLite's file format documentation),
//! so a header that reads the same as before means nothing was committed since.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The first copy of the WAL-index header, as bytes.
pub(super) type WalHeader = [u8; 48];

/// The header `after` a commit of this store's, when it shows that commit and
/// nothing else since `before` (read under the same transaction's write lock, just
/// before it committed): the commit counter (`iChange`) moved by exactly one, or
/// nothing changed at all (a transaction that wrote nothing).
pub(super) fn after_own_commit(
    before: Option<WalHeader>,
    after: Option<WalHeader>,
) -> Option<WalHeader> {
    let (before, after) = (before?, after?);
    let commits = |h: &WalHeader| u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
    (after == before || commits(&after) == commits(&before).wrapping_add(1)).then_some(after)
}

/// Where the header is read from.
#[derive(Debug)]
pub(super) enum WalIndex {
    /// An in-memory database: no other connection can commit to it.
    Memory,
    /// The `-shm` file beside the database file, opened on first use.
    File { path: PathBuf, file: OnceLock<File> },
}

impl WalIndex {
    /// The WAL-index of the database file at `database`.
    pub(super) fn of_file(database: &std::path::Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-shm");
        Self::File {
            path: path.into(),
            file: OnceLock::new(),
        }
    }

    /// The header now; `None` when it cannot be read (then nothing counts as
    /// unchanged).
    pub(super) fn header(&self) -> Option<WalHeader> {
        match self {
            Self::Memory => Some([0; 48]),
            Self::File { path, file } => {
                if file.get().is_none() {
                    // it exists once a connection opened the database in WAL mode
                    let _ = file.set(File::open(path).ok()?);
                }
                let mut header = [0; 48];
                file.get()?.read_exact_at(&mut header, 0).ok()?;
                Some(header)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(commits: u32, frames: u8) -> WalHeader {
        let mut h = [0; 48];
        h[8..12].copy_from_slice(&commits.to_ne_bytes());
        h[16] = frames;
        h
    }

    #[test]
    fn a_header_is_ours_only_when_exactly_our_commit_moved_it() {
        let before = Some(header(7, 3));
        assert_eq!(
            after_own_commit(before, Some(header(8, 5))),
            Some(header(8, 5))
        );
        assert_eq!(after_own_commit(before, before), before, "nothing written");
        assert_eq!(
            after_own_commit(before, Some(header(9, 9))),
            None,
            "one more"
        );
        assert_eq!(
            after_own_commit(before, Some(header(7, 0))),
            None,
            "restarted"
        );
        assert_eq!(after_own_commit(None, before), None);
    }
}
