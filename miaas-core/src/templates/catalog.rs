//! The templates that do not live in the database: the built-in catalog embedded
//! in the binary, and the files of a templates folder, read again when they
//! change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::model::{Template, TemplateSource, TemplateSpec};
use crate::{Error, Result};

/// The built-in templates' files, by name.
const BUILTIN_FILES: [(&str, &str); 7] = [
    ("postgres.yaml", include_str!("builtin/postgres.yaml")),
    ("redis.yaml", include_str!("builtin/redis.yaml")),
    ("nginx.yaml", include_str!("builtin/nginx.yaml")),
    ("ollama.yaml", include_str!("builtin/ollama.yaml")),
    ("vllm.yaml", include_str!("builtin/vllm.yaml")),
    ("jupyter.yaml", include_str!("builtin/jupyter.yaml")),
    (
        "text-embeddings-inference.yaml",
        include_str!("builtin/text-embeddings-inference.yaml"),
    ),
];

/// Reads a template file (YAML, or JSON which YAML reads); its id is the file's
/// stem when it names none.
fn read_spec(file_name: &str, text: &str) -> Result<TemplateSpec> {
    let mut spec: TemplateSpec = serde_saphyr::from_str(text)
        .map_err(|err| Error::Invalid(format!("{file_name}: {err}")))?;
    if spec.id.is_empty() {
        let stem = Path::new(file_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        spec.id = stem.to_string();
    }
    super::check_spec(&spec).map_err(|err| Error::Invalid(format!("{file_name}: {err}")))?;
    Ok(spec)
}

/// The built-in catalog, checked.
pub fn builtin_templates() -> Result<Vec<Template>> {
    BUILTIN_FILES
        .iter()
        .map(|(file, text)| {
            let spec = read_spec(file, text)?;
            let version = spec.version.unwrap_or(1);
            Ok(super::describe(spec, version, TemplateSource::Builtin))
        })
        .collect()
}

/// What a folder's files looked like when last read: names, sizes, times.
type FolderState = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The built-in templates and those of a folder.
pub struct Catalog {
    builtin: Vec<Template>,
    folder: Option<PathBuf>,
    /// The folder's templates, and the state of its files they were read from.
    from_folder: RwLock<(Arc<Vec<Template>>, FolderState)>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("builtin", &self.builtin.len())
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// The built-in templates only.
    pub fn builtin() -> Result<Self> {
        Ok(Self {
            builtin: builtin_templates()?,
            folder: None,
            from_folder: RwLock::default(),
        })
    }

    /// The built-in templates, or none when they fail their checks (which the
    /// tests rule out; logged).
    pub fn builtin_or_empty() -> Self {
        Self::builtin().unwrap_or_else(|err| {
            tracing::error!(%err, "the built-in templates are broken");
            Self {
                builtin: Vec::new(),
                folder: None,
                from_folder: RwLock::default(),
            }
        })
    }

    /// The built-in templates and the files of `folder` (`*.yaml`, `*.yml`,
    /// `*.json`); a file that is not a valid template is an error.
    pub fn with_folder(folder: &Path) -> Result<Self> {
        let catalog = Self {
            folder: Some(folder.to_path_buf()),
            ..Self::builtin()?
        };
        let state = folder_state(folder)?;
        let (templates, errors) = catalog.read_folder(&state);
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
        *catalog.write() = (Arc::new(templates), state);
        Ok(catalog)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, (Arc<Vec<Template>>, FolderState)> {
        self.from_folder
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn folder_templates(&self) -> Arc<Vec<Template>> {
        let guard = self
            .from_folder
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0.clone()
    }

    /// The folder, when there is one.
    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// Reads the folder again when its files changed (or always, with `force`):
    /// `Some` with how many templates it now holds and the errors of files left
    /// out, `None` when nothing changed.
    pub fn reload(&self, force: bool) -> Option<Result<(usize, Vec<Error>)>> {
        let folder = self.folder.as_deref()?;
        let state = match folder_state(folder) {
            Ok(state) => state,
            Err(err) => return Some(Err(err)),
        };
        let unchanged = {
            let guard = self
                .from_folder
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.1 == state
        };
        if unchanged && !force {
            return None;
        }
        let (templates, errors) = self.read_folder(&state);
        let count = templates.len();
        *self.write() = (Arc::new(templates), state);
        Some(Ok((count, errors)))
    }

    fn read_folder(&self, state: &FolderState) -> (Vec<Template>, Vec<Error>) {
        let mut templates: Vec<Template> = Vec::new();
        let mut errors = Vec::new();
        for (path, ..) in state {
            let file_name = path.display().to_string();
            let read = std::fs::read_to_string(path)
                .map_err(|err| Error::Invalid(format!("{file_name}: {err}")))
                .and_then(|text| read_spec(&file_name, &text));
            match read {
                Ok(spec) if self.builtin.iter().any(|t| t.id == spec.id) => {
                    errors.push(Error::Conflict(format!(
                        "{file_name}: {:?} is a built-in template's id",
                        spec.id
                    )));
                }
                Ok(spec) if templates.iter().any(|t| t.id == spec.id) => {
                    errors.push(Error::Conflict(format!(
                        "{file_name}: another file already defines {:?}",
                        spec.id
                    )));
                }
                Ok(spec) => {
                    let version = spec.version.unwrap_or(1);
                    templates.push(super::describe(spec, version, TemplateSource::Directory));
                }
                Err(err) => errors.push(err),
            }
        }
        (templates, errors)
    }

    /// The template `id`, built in or from the folder.
    pub fn get(&self, id: &str) -> Option<Template> {
        if let Some(template) = self.builtin.iter().find(|t| t.id == id) {
            return Some(template.clone());
        }
        self.folder_templates().iter().find(|t| t.id == id).cloned()
    }

    /// Every template, built in first, then the folder's, each by id.
    pub fn list(&self) -> Vec<Template> {
        let mut all = self.builtin.clone();
        let mut folder = self.folder_templates().as_ref().clone();
        folder.sort_by(|a, b| a.id.cmp(&b.id));
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.extend(folder);
        all
    }
}

fn folder_state(folder: &Path) -> Result<FolderState> {
    let entries = std::fs::read_dir(folder).map_err(|err| {
        Error::Invalid(format!(
            "cannot read the templates folder {}: {err}",
            folder.display()
        ))
    })?;
    let mut state = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_template = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            && !entry.file_name().to_string_lossy().starts_with('.');
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if is_template && meta.is_file() {
            state.push((path, meta.len(), meta.modified().ok()));
        }
    }
    state.sort();
    Ok(state)
}
