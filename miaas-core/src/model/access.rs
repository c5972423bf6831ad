//! Users, roles, API tokens and the join token, as the API shows them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Error, Result, validate};

/// What a user (or API token) may do. Each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads nodes and deployments (secrets redacted).
    Viewer,
    /// Viewer, plus deployments, cordon, drain, tags and placement plans.
    Operator,
    /// Operator, plus deregistering nodes, users, tokens, the join token and
    /// revealing secrets.
    Admin,
}

impl Role {
    /// The role's name in the API (`admin`, `operator`, `viewer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(Error::Invalid(format!(
                "role: {other:?} is not one of admin, operator, viewer"
            ))),
        }
    }
}

/// A user as listed (never with a password or its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Login name.
    pub username: String,
    /// What the user may do.
    pub role: Role,
    /// Creation time (epoch seconds).
    pub created_at: f64,
}

/// `POST /api/v1/users`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "role": "operator"}))]
pub struct NewUser {
    /// Login name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._@-]+$")]
    pub username: String,
    /// What the user may do (default `viewer`).
    #[serde(default = "default_role")]
    pub role: Role,
    /// At least 8 characters; when absent a random one is generated and returned
    /// once in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

/// The least privilege: what a new user or token gets unless asked otherwise.
fn default_role() -> Role {
    Role::Viewer
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

impl NewUser {
    /// Checks the name and the password, naming the field that is wrong.
    pub fn validate(&self) -> Result<()> {
        validate_username(&self.username)?;
        if let Some(password) = &self.password {
            validate_password(password)?;
        }
        Ok(())
    }
}

/// A login name: 1 to 64 of `A-Z a-z 0-9 . _ - @`.
pub fn validate_username(username: &str) -> Result<()> {
    let valid = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(
            "username: 1 to 64 letters, digits, '.', '_', '-' or '@'".into(),
        ))
    }
}

/// A password: 8 to 1024 characters.
pub fn validate_password(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.len() > 1024 {
        return Err(Error::Invalid(format!(
            "password: {MIN_PASSWORD_CHARS} to 1024 characters"
        )));
    }
    Ok(())
}

/// `PUT /api/v1/users/{username}/password`: an admin sets anyone's password; a
/// user changes their own with `old_password`. Every access token issued before
/// stops working.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "<new password>", "old_password": "<current password>"}))]
pub struct PasswordChange {
    /// The new password: 8 to 1024 characters. `new_password` is read as the same
    /// field.
    #[serde(alias = "new_password")]
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// The current password: required when users change their own (unless they
    /// are an admin). `current_password` is read as the same field.
    #[serde(
        default,
        alias = "current_password",
        skip_serializing_if = "Option::is_none"
    )]
    pub old_password: Option<String>,
}

/// The answer to creating a user.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// The generated password, shown only this once (absent when one was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /api/v1/auth/token`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"username": "admin", "password": "<password>"}))]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// The user's password.
    pub password: String,
}

/// A signed, expiring access token (JWT).
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccessToken {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ci", "role": "operator"}))]
pub struct TokenRequest {
    /// What the token is for (1 to 253 characters).
    #[schema(min_length = 1, max_length = 253)]
    pub name: String,
    /// What the token may do (default `viewer`).
    #[serde(default = "default_role")]
    pub role: Role,
}

impl TokenRequest {
    /// Checks the name.
    pub fn validate(&self) -> Result<()> {
        validate::name("name", &self.name)
    }
}

/// A long-lived API token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiTokenInfo {
    /// Its id, for revoking it.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Creation time (epoch seconds).
    pub created_at: f64,
}

/// The answer to creating an API token: the only time the token is shown.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiToken {
    /// The token's description.
    #[serde(flatten)]
    pub info: ApiTokenInfo,
    /// Send as `Authorization: Bearer <token>`; stored only hashed.
    pub token: String,
}

/// The cluster's join token, which registration requires.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JoinToken {
    /// Send as `Authorization: Bearer <join_token>` to `POST /api/v1/nodes/register`.
    pub join_token: String,
    /// When the server serves HTTPS itself: `sha256:<hex>` of its CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_hash: Option<String>,
    /// When the server serves HTTPS itself: the join token with the CA's hash
    /// (`<join_token>::sha256:<hex>`), for `miaas agent --join-token` to trust
    /// exactly this server on first contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_join_token: Option<String>,
    /// The one-liner that installs and starts the agent on a Linux machine and
    /// joins it (`curl … /install.sh | sh -s - --join-token …`), when a server
    /// answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_command: Option<String>,
    /// Why the install command is not safe or will not work as it is (plain
    /// HTTP, a public URL that names the machine itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install_warnings: Vec<String>,
}

impl JoinToken {
    /// The token, without a CA pin.
    pub fn new(join_token: String) -> Self {
        Self {
            join_token,
            ca_hash: None,
            pinned_join_token: None,
            install_command: None,
            install_warnings: Vec::new(),
        }
    }

    /// The token, pinned to the CA whose hash is `ca_hash` when there is one.
    pub fn with_ca(mut self, ca_hash: Option<&str>) -> Self {
        if let Some(hash) = ca_hash {
            self.pinned_join_token = Some(crate::access::pinned::pin(&self.join_token, hash));
            self.ca_hash = Some(hash.to_string());
        }
        self
    }

    /// The token a machine joins with: pinned when there is a pin.
    pub fn for_joining(&self) -> &str {
        self.pinned_join_token
            .as_deref()
            .unwrap_or(&self.join_token)
    }
}

debug_without!(NewUser, password, [username, role]);
debug_without!(CreatedUser, password, [user]);
debug_without!(LoginRequest, password, [username]);
debug_without!(PasswordChange, password, []);
debug_without!(AccessToken, access_token, [token_type, expires_in]);
debug_without!(CreatedApiToken, token, [info]);
debug_without!(JoinToken, join_token, []);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_order_and_print() {
        assert_eq!("Operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!(Role::Viewer.to_string(), "viewer");
        let json: NewUser = serde_json::from_str(r#"{"username": "bob"}"#).unwrap();
        assert_eq!(json.role, Role::Viewer, "least privilege by default");
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let login = LoginRequest {
            username: "admin".into(),
            password: "hunter2-pw".into(),
        };
        let text = format!("{login:?}");
        assert!(
            text.contains("admin") && !text.contains("hunter2"),
            "{text}"
        );
        let join = JoinToken::new("miaas_join_abc".into()).with_ca(Some("sha256:00"));
        assert!(!format!("{join:?}").contains("abc"));
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert!(validate_username("alice.b-c_d@x").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username(&"a".repeat(65)).is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("short").is_err());
    }
}
