//! Pages of a list: `?limit=&cursor=`, and the opaque cursor of the next page.

use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::{Error, Result};

/// Most items in one page, and the page size when none is asked.
pub const MAX_PAGE: usize = 1000;

/// The query of a list endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Most items to return, 1 to 1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Where to continue: the `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size asked for; `Invalid` outside 1 to [`MAX_PAGE`].
    pub fn limit(&self) -> Result<usize> {
        match self.limit {
            None => Ok(MAX_PAGE),
            Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
            Some(_) => Err(Error::Invalid(format!("limit: 1 to {MAX_PAGE}"))),
        }
    }
}

/// One page of a list, in the list's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Where a page of deployments continues: after this creation time and id.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentKey {
    /// Creation time of the last deployment of the previous page.
    pub created_at: f64,
    /// Its id.
    pub deployment_id: String,
}

/// The cursor after the node named `name`.
pub fn node_cursor(name: &str) -> String {
    hex::encode(name)
}

/// The node name a cursor continues after.
pub fn parse_node_cursor(cursor: &str) -> Result<String> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid_cursor)
}

/// The cursor after `key`.
pub fn deployment_cursor(key: &DeploymentKey) -> String {
    hex::encode(serde_json::json!([key.created_at, key.deployment_id]).to_string())
}

/// The deployment key a cursor continues after.
pub fn parse_deployment_cursor(cursor: &str) -> Result<DeploymentKey> {
    let bytes = hex::decode(cursor).map_err(|_| invalid_cursor())?;
    let (created_at, deployment_id): (f64, String) =
        serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
    Ok(DeploymentKey {
        created_at,
        deployment_id,
    })
}

fn invalid_cursor() -> Error {
    Error::Invalid("cursor: not a cursor this server gave".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(
            parse_node_cursor(&node_cursor("wörker 1")).unwrap(),
            "wörker 1"
        );
        let key = DeploymentKey {
            created_at: 1_795_764_966.059_308_3,
            deployment_id: "web".into(),
        };
        assert_eq!(
            parse_deployment_cursor(&deployment_cursor(&key)).unwrap(),
            key
        );
        assert!(parse_node_cursor("zz").is_err());
        assert!(parse_deployment_cursor(&node_cursor("x")).is_err());
        let too_big = PageQuery {
            limit: Some(1001),
            cursor: None,
        };
        assert!(too_big.limit().is_err());
        assert_eq!(PageQuery::default().limit().unwrap(), MAX_PAGE);
    }
}
