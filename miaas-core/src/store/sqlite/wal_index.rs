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
