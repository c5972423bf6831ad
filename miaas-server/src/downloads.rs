//! The agent binaries the server offers at `/download/miaas-linux-<arch>` (for
//! the install script): the files of `--agent-binaries DIR` named
//! `miaas-linux-<arch>`, or by default the `miaas` binary beside the server's own
//! executable (the running executable under `miaas serve`) for the server's own
//! architecture.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The prefix of every offered file's name.
pub const PREFIX: &str = "miaas-linux-";

/// How many binaries are sent at once (the route is public: more wait their turn
/// with a `503`).
pub const PARALLEL_DOWNLOADS: usize = 8;

/// A file's SHA-256, as of its size and modification time.
type KnownHashes = HashMap<PathBuf, (u64, Option<SystemTime>, String)>;

/// Where the offered binaries are, and their hashes once computed.
#[derive(Debug)]
pub struct AgentBinaries {
    folder: Option<PathBuf>,
    /// The default offer: the server's own architecture and that binary.
    own: Option<(String, PathBuf)>,
    /// SHA-256 of each file as of its size and modification time.
    hashes: Mutex<KnownHashes>,
    /// A permit per binary being sent, held until its last byte is.
    sending: std::sync::Arc<tokio::sync::Semaphore>,
}

impl AgentBinaries {
    /// The binaries of `folder`, or the default offer without one.
    pub fn new(folder: Option<PathBuf>) -> Self {
        let own = if folder.is_some() {
            None
        } else {
            own_binary().map(|path| (std::env::consts::ARCH.to_string(), path))
        };
        Self {
            folder,
            own,
            hashes: Mutex::default(),
            sending: std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL_DOWNLOADS)),
        }
    }

    /// A turn to send a binary, if one is free; the send holds it to its end.
    pub fn turn_to_send(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.sending.clone().try_acquire_owned().ok()
    }

    /// Every architecture offered, with its file.
    pub fn offered(&self) -> BTreeMap<String, PathBuf> {
        let mut all = BTreeMap::new();
        if let Some((arch, path)) = &self.own
            && path.is_file()
        {
            all.insert(arch.clone(), path.clone());
        }
        let Some(folder) = &self.folder else {
            return all;
        };
        let Ok(entries) = std::fs::read_dir(folder) else {
            return all;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(arch) = name.strip_prefix(PREFIX)
                && is_architecture(arch)
                && entry.path().is_file()
            {
                all.insert(arch.to_string(), entry.path());
            }
        }
        all
    }

    /// The file offered for `arch`, if any.
    pub fn binary(&self, arch: &str) -> Option<PathBuf> {
        if !is_architecture(arch) {
            return None;
        }
        self.offered().remove(arch)
    }

    /// The SHA-256 (hex) published for `path`: the first word of a
    /// `<file>.sha256` beside it in --agent-binaries (a release's own, so a
    /// binary changed after it was published is refused by the script), else
    /// computed, once per version of the file.
    pub async fn sha256(&self, path: &Path) -> std::io::Result<String> {
        if self.folder.is_some() {
            let mut published = path.as_os_str().to_os_string();
            published.push(".sha256");
            match tokio::fs::read_to_string(&published).await {
                Ok(text) => {
                    let hash = text.split_whitespace().next().unwrap_or_default();
                    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Ok(hash.to_ascii_lowercase());
                    }
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} holds no SHA-256", Path::new(&published).display()),
                    ));
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        self.computed_sha256(path).await
    }

    async fn computed_sha256(&self, path: &Path) -> std::io::Result<String> {
        let meta = tokio::fs::metadata(path).await?;
        let version = (meta.len(), meta.modified().ok());
        if let Some((len, modified, hash)) = self.lock().get(path)
            && (*len, *modified) == version
        {
            return Ok(hash.clone());
        }
        let file = path.to_path_buf();
        let hash = tokio::task::spawn_blocking(move || hash_file(&file))
            .await
            .map_err(std::io::Error::other)??;
        (self.lock()).insert(path.to_path_buf(), (version.0, version.1, hash.clone()));
        Ok(hash)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KnownHashes> {
        self.hashes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An architecture's name as `uname -m` spells it (`x86_64`, `aarch64`, `armv7`).
pub fn is_architecture(arch: &str) -> bool {
    !arch.is_empty()
        && arch.len() <= 32
        && arch
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The `miaas` binary to offer by default: the running one if it is `miaas`,
/// else `miaas` beside it.
fn own_binary() -> Option<PathBuf> {
    let running = std::env::current_exe().ok()?;
    if running.file_name().is_some_and(|name| name == "miaas") {
        return Some(running);
    }
    Some(running.with_file_name("miaas"))
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_offers_its_architectures_and_their_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("miaas-linux-x86_64"), b"abc").unwrap();
        std::fs::write(dir.path().join("miaas-linux-../x"), b"").ok();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let binaries = AgentBinaries::new(Some(dir.path().to_path_buf()));
        assert_eq!(
            binaries.offered().keys().collect::<Vec<_>>(),
            vec!["x86_64"]
        );
        assert!(binaries.binary("aarch64").is_none());
        assert!(binaries.binary("../notes").is_none());
        let path = binaries.binary("x86_64").unwrap();
        assert_eq!(
            binaries.sha256(&path).await.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // a published hash wins over the file's own
        let published = "0".repeat(64);
        std::fs::write(
            dir.path().join("miaas-linux-x86_64.sha256"),
            format!("{published}  x\n"),
        )
        .unwrap();
        assert_eq!(binaries.sha256(&path).await.unwrap(), published);
        assert_eq!(binaries.offered().len(), 1);
    }

    #[test]
    fn only_so_many_binaries_are_sent_at_once() {
        let binaries = AgentBinaries::new(None);
        let turns: Vec<_> = (0..PARALLEL_DOWNLOADS)
            .map(|_| binaries.turn_to_send().expect("a free turn"))
            .collect();
        assert!(binaries.turn_to_send().is_none());
        drop(turns);
        assert!(binaries.turn_to_send().is_some());
    }
}
