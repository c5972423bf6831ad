//! The command line: global flags and every subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use miaas_core::model::Role;
use miaas_core::store::DatabaseUrl;

use crate::error::EXIT_CODES_HELP;
use crate::output::OutputFormat;

/// MIaaS: a control plane for your own GPU and CPU machines.
///
/// With --server (or MIAAS_SERVER) commands go to a MIaaS server over HTTP;
/// otherwise they work directly on the database of --database-url (default: the
/// control_plane.db in this folder that `miaas serve` uses), with the same rules.
#[derive(Debug, Parser)]
#[command(name = "miaas", version, about, long_about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// URL of a MIaaS server to talk to (e.g. http://cp.example:8080).
    #[arg(long, env = "MIAAS_SERVER", global = true)]
    pub server: Option<String>,

    /// Trust only the CA certificates in this PEM file for an https:// server (a
    /// self-signed or private CA); default: the system roots.
    #[arg(long, env = "MIAAS_CA_CERT", global = true, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// Token sent to the server as `Authorization: Bearer <token>`.
    #[arg(long, env = "MIAAS_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,

    /// Database for local mode (without --server).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://control_plane.db",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Output format: table, wide, json (the API's JSON) or yaml.
    #[arg(short, long, global = true, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane server (the same server and flags as `miaas-server`).
    Serve(Box<miaas_server::ServerConfig>),
    /// Run the node agent: join the control plane (--server) and run the
    /// deployments placed on this machine.
    Agent(Box<AgentArgs>),
    /// List and manage nodes.
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Deploy a compose file, or a template with parameters (create or update a
    /// deployment).
    Deploy(DeployArgs),
    /// The template catalog: list, show, render, add and remove templates.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// List and manage deployments.
    #[command(subcommand)]
    Deployments(DeploymentsCommand),
    /// List deployments (shortcut for `deployments list`).
    Ps {
        /// Keep the list on screen, printed again at each change (follows the
        /// event stream; needs --server or a local database).
        #[arg(short, long)]
        watch: bool,
    },
    /// Show the event log: every change of nodes and deployments (and, for
    /// admins, of users, tokens and the join token), one line each.
    Events(EventsArgs),
    /// Show a deployment's logs, from the node running it (needs --server).
    Logs(LogsArgs),
    /// Delete a deployment (shortcut for `deployments rm`).
    Rm {
        /// The deployment's id.
        id: String,
    },
    /// Dry run: where would this compose file be placed, and why not elsewhere.
    Plan(PlanArgs),
    /// Log in to --server with a password; later commands to it use the access token,
    /// saved (mode 0600) under the user's config directory.
    Login(LoginArgs),
    /// Forget the saved login for --server.
    Logout,
    /// Manage users (admin; local mode needs no login).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API tokens and show or rotate the join token (admin; local mode needs
    /// no login).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Database administration: migrations, moving an install.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print the version of this command.
    Version,
    /// Print a shell completion script (e.g. `miaas completions bash > /etc/bash_completion.d/miaas`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page of `miaas` (roff), e.g. `miaas man >
    /// /usr/local/share/man/man1/miaas.1`.
    Man,
}

/// How an agent runs deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Docker Compose (`docker compose`, else `docker-compose`).
    Docker,
    /// Pretend: deployments become running after --simulated-start.
    Simulated,
}

/// `miaas agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The cluster's join token: needed on the first start (the agent drops it
    /// once registered).
    #[arg(long, env = "MIAAS_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// The node's name [default: the host name].
    #[arg(long, env = "MIAAS_AGENT_NAME")]
    pub name: Option<String>,
    /// The node's address [default: the address of the interface routing to the
    /// server].
    #[arg(long, env = "MIAAS_AGENT_IP")]
    pub ip: Option<std::net::IpAddr>,
    /// The node's tags (comma-separated, e.g. `zone=eu,ssd`).
    #[arg(long, env = "MIAAS_AGENT_TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Where the node's identity (mode 0600) and its deployments' files live
    /// [default: /var/lib/miaas-agent as root, else ~/.local/state/miaas-agent].
    #[arg(long, env = "MIAAS_AGENT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How deployments run.
    #[arg(
        long,
        env = "MIAAS_AGENT_RUNTIME",
        value_enum,
        default_value = "docker"
    )]
    pub runtime: RuntimeKind,
    /// How often a heartbeat with the machine's metrics is sent.
    #[arg(long, env = "MIAAS_AGENT_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = miaas_server::config::parse_duration)]
    pub heartbeat_interval: Duration,
    /// How often the machine is measured again; the node re-registers when its
    /// capabilities changed (a GPU added, memory resized).
    #[arg(long, env = "MIAAS_AGENT_MEASURE_INTERVAL", default_value = "30s", value_parser = miaas_server::config::parse_duration)]
    pub measure_interval: Duration,
    /// How many deployments may be starting at once (the others wait their turn;
    /// heartbeats never wait).
    #[arg(long, env = "MIAAS_AGENT_MAX_PARALLEL_STARTS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel_starts: u16,
    /// How long one start (`docker compose up`, pulling its images) may take
    /// before it is stopped and reported failed.
    #[arg(long, env = "MIAAS_AGENT_START_TIMEOUT", default_value = "30m", value_parser = miaas_server::config::parse_duration)]
    pub start_timeout: Duration,
    /// With --runtime simulated: how long a start takes.
    #[arg(long, env = "MIAAS_AGENT_SIMULATED_START", default_value = "200ms", value_parser = miaas_server::config::parse_duration_or_zero)]
    pub simulated_start: Duration,
    /// With --runtime simulated: deployments whose id matches this pattern fail: a
    /// glob over the whole id (`fail-*`), or a regular expression found in it
    /// (`^fail-[0-9]+$`).
    #[arg(long, env = "MIAAS_AGENT_SIMULATED_FAIL")]
    pub simulated_fail: Option<String>,
    /// With --runtime simulated: how long a deployment's health stays `starting`
    /// after it started before it turns `healthy` (0: healthy at once).
    #[arg(long, env = "MIAAS_AGENT_SIMULATED_READY", default_value = "0s", value_parser = miaas_server::config::parse_duration_or_zero)]
    pub simulated_ready: Duration,
    /// With --runtime simulated: deployments whose id matches this pattern (as
    /// --simulated-fail) run but turn `unhealthy` once --simulated-ready has
    /// passed.
    #[arg(long, env = "MIAAS_AGENT_SIMULATED_UNHEALTHY")]
    pub simulated_unhealthy: Option<String>,
    /// Log filter: a level or tracing directives.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// `miaas login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The user to log in as.
    #[arg(short, long, default_value = "admin")]
    pub username: String,
    /// Read the password from standard input (else it is asked for on the terminal).
    #[arg(long)]
    pub password_stdin: bool,
}

/// `miaas users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    #[command(alias = "ls")]
    List,
    /// Create a user; without --password-stdin a password is generated and printed once.
    Create {
        /// Login name.
        username: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user; its access tokens, and the API tokens it created, stop
    /// working at once.
    #[command(alias = "remove")]
    Rm {
        /// Login name.
        username: String,
    },
    /// Set a user's password (admin, or users their own with the current one);
    /// access tokens issued before stop working.
    Passwd {
        /// Login name.
        username: String,
        /// Read the new password from the first line of standard input, and the
        /// current one (for your own, unless you are an admin) from the second
        /// (else both are asked for on the terminal).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `miaas tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List API tokens that are not revoked (never the tokens themselves).
    #[command(alias = "ls")]
    List,
    /// Create an API token; only the token is printed on standard output, once.
    Create {
        /// What the token is for.
        #[arg(long)]
        name: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: Role,
    },
    /// Revoke an API token; it stops working at once.
    #[command(alias = "revoke", alias = "remove")]
    Rm {
        /// The token's id (from `miaas tokens list`).
        id: String,
    },
    /// Print the join token nodes register with.
    Join {
        /// Replace it first: the old one stops registering nodes; registered nodes
        /// keep working.
        #[arg(long)]
        rotate: bool,
        /// Print the one-liner that installs, starts and joins the agent on a
        /// Linux machine (`curl … /install.sh | sh -s - --join-token …`), pinned to
        /// the server's key when its CA is its own (needs --server).
        #[arg(long)]
        install_command: bool,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|err: miaas_core::Error| err.to_string())
}

/// `miaas db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the database migrations to --database-url (for servers started with
    /// --no-migrate).
    Migrate,
    /// Copy a whole install (nodes with their tokens, deployments, history) into an
    /// empty database, e.g. from SQLite to PostgreSQL, and verify the counts.
    Copy {
        /// The database to copy from (e.g. sqlite://control_plane.db).
        #[arg(long)]
        from: String,
        /// The empty database to copy to (e.g. postgresql://user:password@host/miaas).
        #[arg(long)]
        to: String,
    },
    /// Write a consistent copy of the SQLite database --database-url to FILE, online
    /// (a server may be running). It holds sealed secrets but not the key that opens
    /// them: keep the key file safe apart. For PostgreSQL, use pg_dump (README).
    Backup {
        /// The backup file to write (must not exist); written 0600.
        file: std::path::PathBuf,
    },
    /// Restore a backup into --database-url: replaces a SQLite file (no server may
    /// be running on it) or fills an empty PostgreSQL database.
    Restore {
        /// The backup file (from `miaas db backup`).
        file: std::path::PathBuf,
        /// Replace a database that holds nodes, deployments or users.
        #[arg(long)]
        force: bool,
    },
}

/// `miaas nodes ...`; NODE is a name, an id, or an unambiguous id prefix.
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List nodes.
    #[command(alias = "ls")]
    List,
    /// Show one node.
    Get {
        /// Name, id or id prefix.
        node: String,
    },
    /// Cordon a node and place its deployments on other nodes.
    Drain {
        /// Name, id or id prefix.
        node: String,
    },
    /// Stop placing new deployments on a node.
    Cordon {
        /// Name, id or id prefix.
        node: String,
    },
    /// Allow placements on a node again.
    Uncordon {
        /// Name, id or id prefix.
        node: String,
    },
    /// Deregister a node; its deployments are placed elsewhere.
    #[command(alias = "remove")]
    Rm {
        /// Name, id or id prefix.
        node: String,
    },
    /// Add tags to a node (a `key=value` tag matches `node.labels.key == value`).
    Tag {
        /// Name, id or id prefix.
        node: String,
        /// Tags to add.
        tags: Vec<String>,
        /// Tags to remove.
        #[arg(long = "remove", value_name = "TAG")]
        remove: Vec<String>,
    },
}

/// `miaas deployments ...`.
#[derive(Debug, Subcommand)]
pub enum DeploymentsCommand {
    /// List deployments.
    #[command(alias = "ls")]
    List,
    /// Show one deployment (env values as `***` unless --reveal).
    Get {
        /// The deployment's id.
        id: String,
        /// Show env values in clear (admin only on a server).
        #[arg(long)]
        reveal: bool,
    },
    /// Delete a deployment.
    #[command(alias = "remove")]
    Rm {
        /// The deployment's id.
        id: String,
    },
}

/// Requirement flags shared by `deploy` and `plan`; they override what the compose
/// file reserves.
#[derive(Debug, Clone, Args)]
pub struct RequirementFlags {
    /// CPU cores to reserve (fractional).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory to reserve, in Docker units (`512M`, `2G` = 2048 MB).
    #[arg(long)]
    pub memory: Option<String>,
    /// Number of GPUs to reserve.
    #[arg(long)]
    pub gpus: Option<u32>,
    /// A node tag the deployment needs (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Pin to a node, by name or id.
    #[arg(long)]
    pub node: Option<String>,
}

/// `miaas deploy`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("waiting").args(["wait", "wait_for"]).multiple(true))]
pub struct DeployArgs {
    /// The compose file (`-` reads standard input); without it, the server renders
    /// --template.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        required_unless_present = "template"
    )]
    pub file: Option<PathBuf>,
    /// The deployment id [default: the compose file's folder name, as docker compose
    /// names projects; the template's id without a file].
    #[arg(long)]
    pub name: Option<String>,
    /// The template: rendered by the server with --set values when there is no
    /// --file (see `miaas templates list`); with --file, only recorded [default: the
    /// name].
    #[arg(long)]
    pub template: Option<String>,
    /// A template parameter, `NAME=VALUE` (repeatable; typed as the template says).
    #[arg(
        long = "set",
        value_name = "NAME=VALUE",
        conflicts_with = "file",
        requires = "template"
    )]
    pub set: Vec<String>,
    /// An environment variable, `KEY=VALUE` (or `KEY` to take it from this shell).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A file of `KEY=VALUE` lines.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Requirements.
    #[command(flatten)]
    pub requirements: RequirementFlags,
    /// Wait until the deployment is ready, as `docker compose up --wait` does:
    /// running, its healthchecks passing (or none); then print its endpoints.
    /// Exits 1 when it fails, turns unhealthy, or --timeout passes.
    #[arg(long)]
    pub wait: bool,
    /// What --wait waits for: `scheduled` (placed on a node), `running` (its
    /// containers run) or `ready` (running and healthy, the default); implies
    /// --wait.
    #[arg(long, value_enum, value_name = "MILESTONE")]
    pub wait_for: Option<Milestone>,
    /// How long --wait waits (e.g. `30s`, `2m`).
    #[arg(long, default_value = "5m", value_parser = miaas_server::config::parse_duration, requires = "waiting")]
    pub timeout: Duration,
}

/// A point in a deployment's start that `miaas deploy --wait-for` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Milestone {
    /// Placed on a node.
    Scheduled,
    /// Its containers run.
    Running,
    /// Running, with its healthchecks passing (or none).
    Ready,
}

/// `miaas events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep waiting for new events (without --since, only new ones come).
    #[arg(short, long)]
    pub follow: bool,
    /// Only events after this cursor.
    #[arg(long, value_name = "CURSOR")]
    pub since: Option<u64>,
    /// Only these topics: `node`, `deployment`, `deployment:ID`, `node:ID`, `user`
    /// (repeatable).
    #[arg(long)]
    pub topic: Vec<String>,
    /// Only these types: `deployment.running`, or `deployment` for all of them
    /// (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
}

/// `miaas logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The deployment.
    pub deployment: String,
    /// Keep printing new lines until interrupted or the deployment is deleted.
    #[arg(short, long)]
    pub follow: bool,
    /// How many earlier lines to show (at most 10,000).
    #[arg(long, default_value_t = 200)]
    pub tail: u32,
    /// Only this compose service.
    #[arg(long)]
    pub service: Option<String>,
    /// Only lines since this time: RFC 3339 or relative (`10m`).
    #[arg(long)]
    pub since: Option<String>,
    /// Show each line's time.
    #[arg(short = 't', long)]
    pub timestamps: bool,
}

/// `miaas plan`: for a compose file, a template, or bare requirement flags
/// (`miaas plan --cpus 1 --memory 1G`), at least one of them.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("planned")
        .required(true)
        .multiple(true)
        .args(["file", "template", "cpus", "memory", "gpus", "tags", "node"])
))]
pub struct PlanArgs {
    /// The compose file (`-` reads standard input); without it or --template, the
    /// requirement flags alone are planned for.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "template"
    )]
    pub file: Option<PathBuf>,
    /// Plan for a template rendered with --set values instead of a file.
    #[arg(long)]
    pub template: Option<String>,
    /// A template parameter, `NAME=VALUE` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", requires = "template")]
    pub set: Vec<String>,
    /// Requirements.
    #[command(flatten)]
    pub requirements: RequirementFlags,
}

/// `miaas templates ...`.
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// List the templates: built in, from the server's templates folder, and added.
    #[command(visible_alias = "ls")]
    List {
        /// Only this category (`database`, `web`, `ai`, ...).
        #[arg(long)]
        category: Option<String>,
    },
    /// Show a template: what it is, and its parameters as a table.
    Show {
        /// The template's id.
        id: String,
        /// Also print its compose document (Jinja).
        #[arg(long)]
        compose: bool,
    },
    /// Render a template without deploying it: the compose document, secrets
    /// masked, and what it needs from a node.
    Render {
        /// The template's id.
        id: String,
        /// A parameter, `NAME=VALUE` (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// Add a template from a YAML or JSON file (checked first), or with --replace
    /// store a new version of one added before.
    Add {
        /// The template file (`-` reads standard input).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// The id [default: the file's `id`, else its name without extension].
        #[arg(long)]
        id: Option<String>,
        /// Replace an existing template with a new version.
        #[arg(long)]
        replace: bool,
    },
    /// Remove a template added before (built-in ones stay).
    #[command(visible_alias = "remove")]
    Rm {
        /// The template's id.
        id: String,
    },
}
