//! The tables: nodes, deployments, placement plans, users, API tokens. Columns keep
//! their order.

use std::collections::HashMap;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use miaas_core::model::{
    ApiTokenInfo, Deployment, DeploymentHealth, DeploymentStatus, Node, NodeStatus,
    TemplateParameter, TemplateSummary, User,
};
use miaas_core::placement::PlacementPlan;

use super::human::{ago, duration_short, size_mb};
use super::{OutputFormat, colour_stdout};

fn new_table(header: Vec<&str>) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    if !colour_stdout() {
        table.force_no_tty();
    }
    table
}

/// The table as lines without trailing blanks, as `docker ps` prints.
fn render(mut table: Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn coloured(text: &str, color: Color) -> Cell {
    let cell = Cell::new(text);
    if colour_stdout() {
        cell.fg(color)
    } else {
        cell
    }
}

/// The first 8 characters of an id, as `docker ps` shortens them.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn cpus(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// NAME, ID, IP, STATUS, CPU, MEMORY, GPUS, LAST SEEN, DEPLOYMENTS (+ wide columns:
/// DISK, OS, DOCKER, SCHEDULABLE, CPU USE, MEM USE, TAGS).
pub fn nodes_table(nodes: &[Node], format: OutputFormat, now: f64) -> String {
    let wide = format == OutputFormat::Wide;
    let mut header = vec![
        "NAME",
        "ID",
        "IP",
        "STATUS",
        "CPU",
        "MEMORY",
        "GPUS",
        "LAST SEEN",
        "DEPLOYMENTS",
    ];
    if wide {
        header.extend([
            "DISK",
            "OS",
            "DOCKER",
            "SCHEDULABLE",
            "CPU USE",
            "MEM USE",
            "TAGS",
        ]);
    }
    let mut table = new_table(header);
    for node in nodes {
        let caps = &node.capabilities;
        let status = match node.status {
            NodeStatus::Online if !node.schedulable => coloured("online,cordoned", Color::Yellow),
            NodeStatus::Online => coloured("online", Color::Green),
            NodeStatus::Offline => coloured("offline", Color::Red),
        };
        let mut row = vec![
            Cell::new(&node.name),
            Cell::new(if wide {
                node.id.as_str()
            } else {
                short_id(&node.id)
            }),
            Cell::new(&node.ip),
            status,
            Cell::new(format!("{}/{}", cpus(node.reserved.cpus), caps.cpu_count)),
            Cell::new(format!(
                "{}/{}",
                size_mb(node.reserved.mem_mb),
                size_mb(caps.mem_mb)
            )),
            Cell::new(format!("{}/{}", node.reserved.gpus, caps.gpus.len())),
            Cell::new(ago(now, node.last_seen)),
            Cell::new(node.deployments.len()),
        ];
        if wide {
            let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}%"));
            // a node that did not report its disk shows `-`, never a made-up size
            let disk = caps.disk_mb.map_or("-".to_string(), |total| {
                format!("{}/{}", size_mb(node.reserved.disk_mb), size_mb(total))
            });
            row.extend([
                Cell::new(disk),
                Cell::new(&caps.os),
                Cell::new(caps.docker.as_ref().map_or("-", |d| d.version.as_str())),
                Cell::new(if node.schedulable { "yes" } else { "no" }),
                Cell::new(percent(node.metrics.as_ref().map(|m| m.cpu_usage))),
                Cell::new(percent(node.metrics.as_ref().map(|m| m.mem_usage))),
                Cell::new(if node.tags.is_empty() {
                    "-".to_string()
                } else {
                    node.tags.join(",")
                }),
            ]);
        }
        table.add_row(row);
    }
    render(table)
}

/// The status with its health (`running (unhealthy, 3 restarts)`), coloured.
fn status_cell(deployment: &Deployment) -> Cell {
    let color = match (deployment.status, deployment.health) {
        (DeploymentStatus::Running, Some(DeploymentHealth::Unhealthy)) => Color::Red,
        (DeploymentStatus::Running, Some(DeploymentHealth::Starting)) => Color::Yellow,
        (DeploymentStatus::Running | DeploymentStatus::Scheduled, _) => Color::Green,
        (DeploymentStatus::Pending | DeploymentStatus::Deleting, _) => Color::Yellow,
        (DeploymentStatus::Failed | DeploymentStatus::Lost, _) => Color::Red,
        (DeploymentStatus::Deleted, _) => Color::DarkGrey,
    };
    coloured(&deployment.status_text(), color)
}

/// ID, STATUS, NODE, TEMPLATE, AGE (+ REVISION, GPUS, ENDPOINTS, MESSAGE when
/// wide). NODE shows the node's name when `names` knows it.
pub fn deployments_table(
    deployments: &[Deployment],
    names: &HashMap<String, String>,
    format: OutputFormat,
    now: f64,
) -> String {
    let wide = format == OutputFormat::Wide;
    let mut header = vec!["ID", "STATUS", "NODE", "TEMPLATE", "AGE"];
    if wide {
        header.extend(["REVISION", "GPUS", "ENDPOINTS", "MESSAGE"]);
    }
    let mut table = new_table(header);
    for d in deployments {
        let node = d.node_id.as_deref().map_or("-".to_string(), |id| {
            names
                .get(id)
                .cloned()
                .unwrap_or_else(|| short_id(id).to_string())
        });
        let mut row = vec![
            Cell::new(&d.deployment_id),
            status_cell(d),
            Cell::new(node),
            Cell::new(&d.template_id),
            Cell::new(duration_short(now - d.created_at)),
        ];
        if wide {
            let gpus: Vec<String> = d.gpu_ids.iter().map(u32::to_string).collect();
            row.extend([
                Cell::new(d.revision),
                Cell::new(if gpus.is_empty() {
                    "-".to_string()
                } else {
                    gpus.join(",")
                }),
                Cell::new(endpoints_cell(&d.endpoints)),
                Cell::new(&d.message),
            ]);
        }
        table.add_row(row);
    }
    render(table)
}

/// A deployment's endpoints in one cell: `http://10.0.0.7:8080`, or
/// `10.0.0.7:5353/udp`, one per line; `-` when it has none.
fn endpoints_cell(endpoints: &[miaas_core::model::Endpoint]) -> String {
    if endpoints.is_empty() {
        return "-".into();
    }
    (endpoints.iter())
        .map(|e| {
            e.url
                .clone()
                .unwrap_or_else(|| format!("{}:{}/{}", e.host, e.port, e.protocol))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Candidates (NAME, ID, SCORE, GPUS) and rejected nodes (NAME, ID, REASONS).
pub fn plan_tables(plan: &PlacementPlan) -> (String, String) {
    let mut candidates = new_table(vec!["RANK", "NAME", "ID", "SCORE", "GPUS"]);
    for (rank, c) in plan.candidates.iter().enumerate() {
        let gpus: Vec<String> = c.gpu_ids.iter().map(u32::to_string).collect();
        candidates.add_row(vec![
            Cell::new(rank + 1),
            Cell::new(&c.name),
            Cell::new(short_id(&c.node_id)),
            Cell::new(format!("{:.3}", c.score)),
            Cell::new(if gpus.is_empty() {
                "-".to_string()
            } else {
                gpus.join(",")
            }),
        ]);
    }
    let mut rejected = new_table(vec!["NAME", "ID", "REASONS"]);
    for r in &plan.rejected {
        rejected.add_row(vec![
            Cell::new(&r.name),
            Cell::new(short_id(&r.node_id)),
            Cell::new(r.reasons.join("; ")),
        ]);
    }
    (render(candidates), render(rejected))
}

/// USERNAME, ROLE, CREATED.
pub fn users_table(users: &[User], now: f64) -> String {
    let mut table = new_table(vec!["USERNAME", "ROLE", "CREATED"]);
    for user in users {
        table.add_row(vec![
            Cell::new(&user.username),
            Cell::new(user.role),
            Cell::new(ago(now, user.created_at)),
        ]);
    }
    render(table)
}

/// ID, NAME, ROLE, CREATED.
pub fn tokens_table(tokens: &[ApiTokenInfo], now: f64) -> String {
    let mut table = new_table(vec!["ID", "NAME", "ROLE", "CREATED"]);
    for token in tokens {
        table.add_row(vec![
            Cell::new(&token.id),
            Cell::new(&token.name),
            Cell::new(token.role),
            Cell::new(ago(now, token.created_at)),
        ]);
    }
    render(table)
}

/// ID, NAME, CATEGORY, VERSION, SOURCE, PARAMETERS (+ wide: DESCRIPTION).
pub fn templates_table(templates: &[TemplateSummary], format: OutputFormat) -> String {
    let wide = format == OutputFormat::Wide;
    let mut header = vec!["ID", "NAME", "CATEGORY", "VERSION", "SOURCE", "PARAMETERS"];
    if wide {
        header.push("DESCRIPTION");
    }
    let mut table = new_table(header);
    for t in templates {
        let source = serde_json::to_value(t.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut row = vec![
            Cell::new(&t.id),
            Cell::new(&t.name),
            Cell::new(if t.category.is_empty() {
                "-"
            } else {
                &t.category
            }),
            Cell::new(t.version),
            Cell::new(source),
            Cell::new(t.parameter_count),
        ];
        if wide {
            row.push(Cell::new(&t.description));
        }
        table.add_row(row);
    }
    render(table)
}

/// NAME, TYPE, DEFAULT, REQUIRED, DESCRIPTION.
pub fn parameters_table(parameters: &[TemplateParameter]) -> String {
    let mut table = new_table(vec!["NAME", "TYPE", "DEFAULT", "REQUIRED", "DESCRIPTION"]);
    for p in parameters {
        let kind = match (&p.options, p.generate) {
            (options, _) if !options.is_empty() => format!("enum({})", options.join("|")),
            (_, Some(generate)) => {
                let how = serde_json::to_value(generate)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                format!("{} (generated {how})", p.kind.as_str())
            }
            _ => p.kind.as_str().to_string(),
        };
        let default = match &p.default {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => "-".into(),
        };
        let required = p.required && p.default.is_none() && p.generate.is_none();
        let description = match (&p.label, &p.description) {
            (Some(label), Some(description)) => format!("{label}. {description}"),
            (Some(text), None) | (None, Some(text)) => text.clone(),
            (None, None) => String::new(),
        };
        table.add_row(vec![
            Cell::new(&p.name),
            Cell::new(kind),
            Cell::new(default),
            Cell::new(if required { "yes" } else { "no" }),
            Cell::new(description),
        ]);
    }
    render(table)
}
