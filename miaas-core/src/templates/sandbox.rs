//! Rendering within bounds. A template is code its author wrote and anyone who
//! may read templates can run (`/render`): minijinja's fuel counts instructions,
//! not bytes, so a few hundred bytes (`{% set a = "x" * 100000000 %}`, strings
//! doubled with `~`) can take gigabytes and seconds. Every rendering therefore
//! writes at most [`MAX_OUTPUT_BYTES`](super::render::MAX_OUTPUT_BYTES), takes at most [`RENDER_TIMEOUT`], runs off
//! the async workers, at most [`CONCURRENT_RENDERS`] at once, and, in the server's
//! binaries, in a worker process (the same program, see [`serve_worker_if_asked`])
//! whose heap is limited to [`WORKER_HEAP_BYTES`] and CPU time to
//! [`RENDER_TIMEOUT`], so that no template can take the server's memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::{Error, Result};

/// The longest one rendering may take.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(5);

/// The heap a rendering worker may take.
pub const WORKER_HEAP_BYTES: u64 = 256 * 1024 * 1024;

/// How many renderings run at once; more wait their turn.
pub const CONCURRENT_RENDERS: usize = 2;

/// Set in a rendering worker's environment: the program renders one template
/// from its standard input and exits.
const WORKER_ENV: &str = "MIAAS_TEMPLATE_WORKER";

/// Where renderings run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Isolation {
    /// In this process, on a blocking thread: output, instructions, time and
    /// concurrency are bounded, memory is not (for the library and tests).
    #[default]
    InProcess,
    /// In a worker process, the program at this path, which must call
    /// [`serve_worker_if_asked`] first thing: memory is bounded too.
    Worker(PathBuf),
}

impl Isolation {
    /// Workers of the running program (which calls [`serve_worker_if_asked`]).
    pub fn worker_of_this_program() -> std::io::Result<Self> {
        std::env::current_exe().map(Self::Worker)
    }
}

/// Renders templates within the bounds, as its [`Isolation`] says.
#[derive(Debug, Clone)]
pub struct Renderer {
    isolation: Isolation,
    permits: Arc<Semaphore>,
}

impl Renderer {
    /// A renderer running its renderings as `isolation` says.
    pub fn new(isolation: Isolation) -> Self {
        Self {
            isolation,
            permits: Arc::new(Semaphore::new(CONCURRENT_RENDERS)),
        }
    }

    /// `source` rendered with `values` ([`super::render::render`]), within the
    /// bounds; an `Invalid` error saying which bound a rendering crossed.
    pub async fn render(&self, source: &str, values: &BTreeMap<String, Value>) -> Result<String> {
        let permit = (self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::Unavailable("template rendering is shut down".into()))?;
        match &self.isolation {
            Isolation::InProcess => {
                let (source, values) = (source.to_string(), values.clone());
                // the permit goes with the rendering: one that runs past the
                // timeout still holds its place until its fuel runs out
                let rendering = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    super::render::render(&source, &values)
                });
                match tokio::time::timeout(RENDER_TIMEOUT, rendering).await {
                    Ok(Ok(rendered)) => rendered,
                    Ok(Err(_)) => Err(Error::Invalid("compose: the rendering failed".into())),
                    Err(_) => Err(too_costly()),
                }
            }
            Isolation::Worker(program) => {
                let rendered = in_worker(program, source, values).await;
                drop(permit);
                rendered
            }
        }
    }
}

fn too_costly() -> Error {
    Error::Invalid(format!(
        "compose: the template takes more than {} s or {} MiB to render (a rendering may \
         write at most {} KiB)",
        RENDER_TIMEOUT.as_secs(),
        WORKER_HEAP_BYTES / (1024 * 1024),
        super::render::MAX_OUTPUT_BYTES / 1024
    ))
}

/// What a worker is asked.
#[derive(Serialize, Deserialize)]
struct WorkerRequest {
    source: String,
    values: BTreeMap<String, Value>,
}

/// What a worker answers: the rendered text, or why there is none.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WorkerAnswer {
    Rendered(String),
    Invalid(String),
}

/// Renders in a worker process; a worker that dies (its heap or CPU time used up)
/// or outlives [`RENDER_TIMEOUT`] (killed) is an error.
async fn in_worker(
    program: &std::path::Path,
    source: &str,
    values: &BTreeMap<String, Value>,
) -> Result<String> {
    let request = serde_json::to_vec(&WorkerRequest {
        source: source.to_string(),
        values: values.clone(),
    })
    .map_err(|err| Error::Invalid(format!("compose: {err}")))?;
    let unavailable =
        |err: std::io::Error| Error::Unavailable(format!("cannot start a rendering worker: {err}"));
    let mut child = tokio::process::Command::new(program)
        .env_clear()
        .env(WORKER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(unavailable)?;
    if let Some(mut stdin) = child.stdin.take() {
        // written beside the wait, so that neither side waits on a full pipe
        tokio::spawn(async move {
            let _ = stdin.write_all(&request).await;
        });
    }
    // dropped on a timeout, the worker is killed
    let output = match tokio::time::timeout(RENDER_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.map_err(unavailable)?,
        Err(_) => return Err(too_costly()),
    };
    if !output.status.success() {
        return Err(too_costly());
    }
    match serde_json::from_slice(&output.stdout) {
        Ok(WorkerAnswer::Rendered(text)) => Ok(text),
        Ok(WorkerAnswer::Invalid(message)) => Err(Error::Invalid(message)),
        Err(_) => Err(too_costly()),
    }
}

/// When this process was started as a rendering worker (by a [`Renderer`] of
/// [`Isolation::Worker`]): limits its heap and CPU time, renders the template on
/// its standard input, writes the answer to its standard output and exits. Else
/// returns at once. Call it first thing in `main`, before any thread starts.
pub fn serve_worker_if_asked() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let code = match serve_one() {
        Ok(()) => 0,
        Err(_) => 3,
    };
    std::process::exit(code);
}

fn serve_one() -> std::io::Result<()> {
    use std::io::{Read, Write};
    limit_this_process()?;
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    let request: WorkerRequest = serde_json::from_slice(&input)?;
    let answer = match super::render::render(&request.source, &request.values) {
        Ok(text) => WorkerAnswer::Rendered(text),
        Err(err) => WorkerAnswer::Invalid(err.to_string()),
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &answer)?;
    out.flush()
}

#[cfg(unix)]
fn limit_this_process() -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let heap = Rlimit {
        current: Some(WORKER_HEAP_BYTES),
        maximum: Some(WORKER_HEAP_BYTES),
    };
    let cpu = Rlimit {
        current: Some(RENDER_TIMEOUT.as_secs()),
        maximum: Some(RENDER_TIMEOUT.as_secs() + 1),
    };
    setrlimit(Resource::Data, heap)?;
    setrlimit(Resource::Cpu, cpu)?;
    Ok(())
}

#[cfg(not(unix))]
fn limit_this_process() -> std::io::Result<()> {
    Ok(())
}
