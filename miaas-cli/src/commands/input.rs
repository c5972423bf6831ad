//! What `deploy` and `plan` read: the compose file, environment, requirement flags.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use miaas_core::compose::node_document::resolve;
use miaas_core::compose::{parse_size_bytes, requirements_of};
use miaas_core::model::{Env, Requirements};

use crate::cli::RequirementFlags;
use crate::error::{CliError, Result};

/// A compose document and the folder it came from.
pub struct ComposeInput {
    /// The document.
    pub text: String,
    /// Name of the folder holding it (the working directory for stdin).
    pub folder_name: String,
}

/// Reads `file` (`-`: standard input).
pub fn read_compose(file: &Path) -> Result<ComposeInput> {
    let cwd_name = || {
        std::env::current_dir()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default()
    };
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|err| {
            CliError::Failed(format!("cannot read the compose file from stdin: {err}"))
        })?;
        return Ok(ComposeInput {
            text,
            folder_name: cwd_name(),
        });
    }
    let text = std::fs::read_to_string(file).map_err(|err| {
        CliError::Failed(format!(
            "cannot read compose file {}: {err}",
            file.display()
        ))
    })?;
    let folder_name = std::fs::canonicalize(file)
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(cwd_name);
    Ok(ComposeInput { text, folder_name })
}

/// A folder name made a deployment id the way docker compose makes project names:
/// lowercase letters, digits, `-` and `_`, starting with a letter or digit.
pub fn project_name(folder: &str) -> String {
    let name: String = folder
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let name = name.trim_start_matches(['-', '_']).to_string();
    if name.is_empty() {
        "default".into()
    } else {
        name
    }
}

/// The environment: `--env-file` lines first, then each `-e` (a bare `KEY` takes
/// this shell's value).
pub fn environment(pairs: &[String], env_file: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    if let Some(path) = env_file {
        let text = std::fs::read_to_string(path).map_err(|err| {
            CliError::Failed(format!("cannot read env file {}: {err}", path.display()))
        })?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=').ok_or_else(|| {
                CliError::Failed(format!(
                    "{}:{}: expected KEY=VALUE, got {line:?}",
                    path.display(),
                    number + 1
                ))
            })?;
            env.insert(key.trim().to_string(), unquote(value.trim()).to_string());
        }
    }
    for pair in pairs {
        match pair.split_once('=') {
            Some((key, value)) => {
                env.insert(key.to_string(), value.to_string());
            }
            None => {
                let value = std::env::var(pair).map_err(|_| {
                    CliError::Usage(format!(
                        "-e {pair}: not KEY=VALUE, and {pair} is not set here"
                    ))
                })?;
                env.insert(pair.clone(), value);
            }
        }
    }
    Ok(env)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Template parameters from `--set NAME=VALUE` flags, as text (the server reads
/// each by its parameter's type).
pub fn template_params(pairs: &[String]) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut params = BTreeMap::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--set {pair}: expected NAME=VALUE")))?;
        if name.trim().is_empty() {
            return Err(CliError::Usage(format!("--set {pair}: the name is empty")));
        }
        params.insert(
            name.trim().to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    Ok(params)
}

/// Whether any requirement flag is given.
pub fn any_requirement_flag(flags: &RequirementFlags) -> bool {
    flags.cpus.is_some()
        || flags.memory.is_some()
        || flags.gpus.is_some()
        || !flags.tags.is_empty()
        || flags.node.is_some()
}

/// Requirements from the flags laid over those the compose file states; `None` when
/// no flag is given (the compose file alone decides, wherever it is read).
/// The requirements of `compose` interpolated with `env` (as the server reads
/// it), with the flags laid over them; `None` when no flag is given (the server
/// derives them itself).
pub fn requirements(
    compose: &str,
    env: &BTreeMap<String, String>,
    flags: &RequirementFlags,
) -> Result<Option<Requirements>> {
    if !any_requirement_flag(flags) {
        return Ok(None);
    }
    let resolved = resolve(compose, &Env::from(env.clone()))?;
    flags_over(requirements_of(&resolved)?, flags).map(Some)
}

/// Requirements from the flags alone (`miaas plan --cpus 1 --memory 1G`):
/// what a flag does not say is not needed.
pub fn bare_requirements(flags: &RequirementFlags) -> Result<Requirements> {
    flags_over(Requirements::default(), flags)
}

/// `requirements` with what the flags say laid over them.
fn flags_over(mut requirements: Requirements, flags: &RequirementFlags) -> Result<Requirements> {
    if let Some(cpus) = flags.cpus {
        requirements.cpus = cpus;
    }
    if let Some(memory) = &flags.memory {
        let bytes = parse_size_bytes(memory).ok_or_else(|| {
            CliError::Usage(format!("--memory {memory:?} is not a size (e.g. 512M, 2G)"))
        })?;
        requirements.mem_mb = (bytes / (1024.0 * 1024.0)).ceil() as u64;
    }
    if let Some(gpus) = flags.gpus {
        requirements.gpus = gpus;
    }
    for tag in &flags.tags {
        if !requirements.tags.contains(tag) {
            requirements.tags.push(tag.clone());
        }
    }
    if let Some(node) = &flags.node {
        requirements.node = Some(node.clone());
    }
    Ok(requirements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_compose_project_names() {
        assert_eq!(project_name("My App"), "myapp");
        assert_eq!(project_name("_web-1"), "web-1");
        assert_eq!(project_name("..."), "default");
    }

    #[test]
    fn flags_override_the_compose_reservations() {
        let compose = "services:\n  a:\n    deploy:\n      resources:\n        reservations:\n          cpus: '1'\n          memory: 1G\n";
        let flags = RequirementFlags {
            cpus: None,
            memory: Some("2G".into()),
            gpus: Some(1),
            tags: vec!["zone=eu".into()],
            node: None,
        };
        let r = requirements(compose, &BTreeMap::new(), &flags)
            .unwrap()
            .unwrap();
        assert_eq!((r.cpus, r.mem_mb, r.gpus), (1.0, 2048, 1));
        // the document is read as the server reads it: interpolated with the env
        let interpolated = compose.replace("'1'", "${CPUS}");
        let env = BTreeMap::from([("CPUS".to_string(), "3".to_string())]);
        let r = requirements(&interpolated, &env, &flags).unwrap().unwrap();
        assert_eq!(r.cpus, 3.0);
        assert_eq!(r.tags, vec!["zone=eu".to_string()]);
        let none = RequirementFlags {
            memory: None,
            gpus: None,
            tags: vec![],
            ..flags
        };
        assert!(
            requirements(compose, &BTreeMap::new(), &none)
                .unwrap()
                .is_none()
        );
    }
}
