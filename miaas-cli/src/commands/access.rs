//! `miaas users ...` and `miaas tokens ...`. Secrets a command creates (a generated
//! password, an API token, the join token) go alone to standard output, so that
//! `TOKEN=$(miaas tokens create ...)` works; what they are goes to standard error.

use miaas_core::model::{NewUser, TokenRequest};

use super::Context;
use crate::cli::{TokensCommand, UsersCommand};
use crate::error::Result;
use crate::output::{print_data, tokens_table, users_table};

/// Runs a `users` subcommand.
pub async fn users(ctx: &Context, command: UsersCommand) -> Result<()> {
    let backend = ctx.backend.as_ref();
    match command {
        UsersCommand::List => {
            let users = backend.list_users().await?;
            if !print_data(ctx.output, &users)? {
                say!("{}", users_table(&users, ctx.now()));
            }
        }
        UsersCommand::Create {
            username,
            role,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(super::login::read_stdin_password()?)
            } else {
                None
            };
            let created = backend
                .create_user(&NewUser {
                    username,
                    role,
                    password,
                })
                .await?;
            if print_data(ctx.output, &created)? {
                return Ok(());
            }
            eprintln!(
                "created user {} ({})",
                created.user.username, created.user.role
            );
            if let Some(password) = &created.password {
                eprintln!("its password, shown only now:");
                say!("{password}");
            }
        }
        UsersCommand::Rm { username } => {
            backend.delete_user(&username).await?;
            say!("removed user {username}");
        }
        UsersCommand::Passwd {
            username,
            password_stdin,
        } => {
            let change = if password_stdin {
                super::login::read_stdin_password_change()?
            } else {
                super::login::ask_password_change(&username)?
            };
            backend.change_password(&username, &change).await?;
            say!("changed the password of {username}; access tokens issued before no longer work");
        }
    }
    Ok(())
}

/// Runs a `tokens` subcommand.
pub async fn tokens(ctx: &Context, command: TokensCommand) -> Result<()> {
    let backend = ctx.backend.as_ref();
    match command {
        TokensCommand::List => {
            let tokens = backend.list_api_tokens().await?;
            if !print_data(ctx.output, &tokens)? {
                say!("{}", tokens_table(&tokens, ctx.now()));
            }
        }
        TokensCommand::Create { name, role } => {
            let created = backend
                .create_api_token(&TokenRequest { name, role })
                .await?;
            if print_data(ctx.output, &created)? {
                return Ok(());
            }
            eprintln!(
                "created API token {:?} ({}), id {}; shown only now:",
                created.info.name, created.info.role, created.info.id
            );
            say!("{}", created.token);
        }
        TokensCommand::Rm { id } => {
            backend.revoke_api_token(&id).await?;
            say!("revoked API token {id}");
        }
        TokensCommand::Join {
            rotate,
            install_command,
        } => {
            let join = if rotate {
                let join = backend.rotate_join_token().await?;
                eprintln!("join token rotated: the old one no longer registers nodes");
                join
            } else {
                backend.join_token().await?
            };
            if install_command {
                let command = join.install_command.as_deref().ok_or_else(|| {
                    crate::error::CliError::Usage(
                        "the install command comes from a server: give --server URL (or MIAAS_SERVER)"
                            .into(),
                    )
                })?;
                for warning in &join.install_warnings {
                    eprintln!("warning: {warning}");
                }
                say!("{command}");
            } else if !print_data(ctx.output, &join)? {
                say!("{}", join.join_token);
            }
        }
    }
    Ok(())
}
