//! What the machine is, measured in the background: its capabilities (every
//! `--measure-interval`), and the MIaaS containers it runs and its GPUs' usage
//! (every heartbeat interval). Docker and `nvidia-smi` may take long or hang (each
//! command has a timeout); heartbeats read the last measurement and never wait on
//! them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use miaas_core::model::{GpuUsage, NodeCapabilities};
use tokio::sync::watch;

use crate::machine::{self, Probe};
use crate::runtime::Runtime;

/// A measurement of the machine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measured {
    /// What the node registers.
    pub capabilities: NodeCapabilities,
    /// The path whose disk is the node's: Docker's data root, else the state dir.
    pub disk_path: PathBuf,
}

/// The last measurements, kept up to date by background tasks.
pub(crate) struct Measurements {
    pub capabilities: watch::Receiver<Option<Measured>>,
    containers: watch::Receiver<Vec<String>>,
    gpu_usage: watch::Receiver<Vec<GpuUsage>>,
    probe: Arc<Mutex<Probe>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Measurements {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Measurements {
    /// Starts measuring: capabilities every `measure_every`, containers and GPU
    /// usage every `containers_every`.
    pub(crate) fn start(
        runtime: Arc<dyn Runtime>,
        state_dir: PathBuf,
        measure_every: Duration,
        containers_every: Duration,
    ) -> Self {
        let probe = Arc::new(Mutex::new(Probe::default()));
        let (capabilities_tx, capabilities) = watch::channel(None);
        let (containers_tx, containers) = watch::channel(Vec::new());
        let measuring = {
            let (runtime, probe) = (runtime.clone(), probe.clone());
            tokio::spawn(async move {
                loop {
                    let last = capabilities_tx.borrow().clone();
                    let measured = measure(&*runtime, &probe, &state_dir, last.as_ref()).await;
                    capabilities_tx.send_if_modified(|current| {
                        let changed = current.as_ref() != Some(&measured);
                        *current = Some(measured);
                        changed
                    });
                    tokio::time::sleep(measure_every).await;
                }
            })
        };
        let listing = tokio::spawn(async move {
            loop {
                let running = runtime.running_containers().await;
                containers_tx.send_if_modified(|current| {
                    let changed = *current != running;
                    *current = running;
                    changed
                });
                tokio::time::sleep(containers_every).await;
            }
        });
        let (gpu_usage_tx, gpu_usage) = watch::channel(Vec::new());
        let mut gpus_found = capabilities.clone();
        let gpu_measuring = tokio::spawn(async move {
            // asked as soon as the GPUs are known, not one interval later
            let _ = gpus_found.wait_for(Option::is_some).await;
            loop {
                // only a machine whose GPUs were found is asked how busy they are
                let has_gpus =
                    (gpus_found.borrow().as_ref()).is_some_and(|m| !m.capabilities.gpus.is_empty());
                let usage = if has_gpus {
                    crate::gpus::usage().await
                } else {
                    Vec::new()
                };
                gpu_usage_tx.send_replace(usage);
                tokio::time::sleep(containers_every).await;
            }
        });
        Self {
            capabilities,
            containers,
            gpu_usage,
            probe,
            tasks: vec![measuring, listing, gpu_measuring],
        }
    }

    /// The last measurement, waiting for the first one.
    pub(crate) async fn latest(&mut self) -> Option<Measured> {
        let first = self.capabilities.wait_for(Option::is_some).await;
        first.ok().and_then(|measured| measured.clone())
    }

    /// The MIaaS containers running, as last listed.
    pub(crate) fn running_containers(&self) -> Vec<String> {
        self.containers.borrow().clone()
    }

    /// Each GPU's usage, as last measured (`[]` without GPUs, or when
    /// `nvidia-smi` did not answer).
    pub(crate) fn gpu_usage(&self) -> Vec<GpuUsage> {
        self.gpu_usage.borrow().clone()
    }

    /// CPU and memory use (%) since the last call.
    pub(crate) fn usage(&self) -> (f64, f64) {
        self.probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .usage()
    }
}

/// Measures the machine; GPUs `nvidia-smi` did not answer for in time are taken
/// from `last` (a hung driver is not a GPU removed).
async fn measure(
    runtime: &dyn Runtime,
    probe: &Mutex<Probe>,
    state_dir: &std::path::Path,
    last: Option<&Measured>,
) -> Measured {
    let facts = probe.lock().unwrap_or_else(PoisonError::into_inner).facts();
    // a data root on another machine (a remote DOCKER_HOST) is not ours to measure
    let disk_path = (runtime.data_root().await)
        .filter(|root| root.exists())
        .unwrap_or_else(|| state_dir.to_path_buf());
    let disk = machine::disk_of(&disk_path).or_else(|| machine::disk_of(std::path::Path::new("/")));
    let gpus = match crate::gpus::discover().await {
        Some(gpus) => gpus,
        None => last
            .map(|m| m.capabilities.gpus.clone())
            .unwrap_or_default(),
    };
    Measured {
        capabilities: NodeCapabilities {
            os: facts.os,
            cpu_count: facts.cpus,
            mem_mb: facts.mem_mb,
            disk_mb: disk.map(|(total, _)| total),
            gpus,
            docker: runtime.engine().await,
            extra: serde_json::Map::new(),
        },
        disk_path,
    }
}
