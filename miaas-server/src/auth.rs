//! Authentication and authorization as extractors: a handler states the permission
//! it needs in its signature ([`Allowed`]), and the check runs before the body is
//! read, so a caller without the right never learns more than `401`/`403`.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use miaas_core::access::credential::CredentialKind;
use miaas_core::access::{Permission, Principal};

use crate::error::ApiError;
use crate::extract::BearerToken;
use crate::state::AppState;

/// Who is calling. With authentication off, everyone is
/// [`Principal::Unrestricted`].
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.auth {
            return Ok(Self(Principal::Unrestricted));
        }
        let BearerToken(token) = BearerToken::from_request_parts(parts, state)
            .await
            .unwrap_or_default();
        Ok(Self(state.service.authenticate(token.as_deref()).await?))
    }
}

/// Who a node-protocol call comes from before its token is checked: with
/// authentication off [`Principal::Unrestricted`], else [`Principal::Anonymous`]
/// (the service finds the node its token names).
#[derive(Debug, Clone)]
pub struct NodeCaller(pub Principal);

impl FromRequestParts<AppState> for NodeCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(if state.auth {
            Principal::Anonymous
        } else {
            Principal::Unrestricted
        }))
    }
}

/// A permission a route needs, as a type.
pub trait Rule: Send + Sync {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! rules {
    ($($(#[$doc:meta])* $name:ident => $permission:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Rule for $name {
            const PERMISSION: Permission = Permission::$permission;
        }
    )*};
}

rules! {
    /// Read nodes and deployments.
    Read => Read;
    /// Create, update and delete deployments.
    Deploy => Deploy;
    /// Cordon, tag and drain nodes.
    ManageNodes => ManageNodes;
    /// Placement dry runs.
    Plan => Plan;
    /// Deregister nodes.
    DeregisterNodes => DeregisterNodes;
    /// Users, API tokens and the join token.
    ManageAccess => ManageAccess;
    /// Add, change and remove templates.
    ManageTemplates => ManageTemplates;
}

/// A caller allowed to do `R` (else `401` without a valid credential, `403` with
/// one that lacks the right).
#[derive(Debug, Clone)]
pub struct Allowed<R: Rule>(pub Principal, pub PhantomData<R>);

impl<R: Rule> FromRequestParts<AppState> for Allowed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        principal.require(R::PERMISSION)?;
        Ok(Self(principal, PhantomData))
    }
}

/// The credential of a node-protocol call (heartbeat, desired state, status
/// report), which the service checks against the node concerned. A user's or the
/// cluster's credential is refused here: `403` when valid, `401` when not.
#[derive(Debug, Clone)]
pub struct NodeCredential(pub Option<String>);

impl FromRequestParts<AppState> for NodeCredential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state)
            .await
            .unwrap_or_default();
        let user_credential = token
            .as_deref()
            .filter(|t| state.auth && CredentialKind::of(t).is_user_or_cluster());
        if let Some(presented) = user_credential {
            let principal = state.service.authenticate(Some(presented)).await?;
            return Err(miaas_core::Error::Forbidden(format!(
                "{} may not act as a node: only the node itself, with its node token",
                principal.describe()
            ))
            .into());
        }
        Ok(Self(token))
    }
}
