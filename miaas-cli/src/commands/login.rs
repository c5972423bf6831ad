//! `miaas login` and `miaas logout`: a password for an access token, saved per
//! server.

use std::io::{IsTerminal, Read};

use miaas_core::model::{LoginRequest, PasswordChange};

use miaas_core::clock::{Clock, SystemClock};

use crate::backend::HttpBackend;
use crate::cli::LoginArgs;
use crate::credentials::{self, SavedLogin};
use crate::error::{CliError, Result};
use crate::output::{OutputFormat, print_data};

/// Logs in to `server` and saves the access token.
pub async fn login(
    backend: &HttpBackend,
    output: OutputFormat,
    server: &str,
    args: LoginArgs,
) -> Result<()> {
    let password = if args.password_stdin {
        read_stdin_password()?
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Password for {}: ", args.username))
            .map_err(|err| CliError::Failed(format!("cannot read the password: {err}")))?
    } else {
        return Err(CliError::Usage(
            "no terminal to ask for the password on: pipe it with --password-stdin".into(),
        ));
    };
    let token = backend
        .login(&LoginRequest {
            username: args.username.clone(),
            password,
        })
        .await?;
    let path = credentials::save(
        server,
        SavedLogin {
            username: args.username.clone(),
            access_token: token.access_token.clone(),
            expires_at: SystemClock.now() + token.expires_in as f64,
        },
    )?;
    if print_data(output, &token)? {
        return Ok(());
    }
    say!(
        "logged in to {} as {} (for {}s; saved in {})",
        credentials::server_key(server),
        args.username,
        token.expires_in,
        path.display()
    );
    Ok(())
}

/// Forgets the saved login for `server`.
pub fn logout(server: &str) -> Result<()> {
    if credentials::forget(server)? {
        say!("logged out of {}", credentials::server_key(server));
    } else {
        eprintln!("not logged in to {}", credentials::server_key(server));
    }
    Ok(())
}

/// A password piped on standard input (one trailing newline dropped).
pub fn read_stdin_password() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|err| CliError::Failed(format!("cannot read the password: {err}")))?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(CliError::Usage(
            "the password on standard input is empty".into(),
        ));
    }
    Ok(password.to_string())
}

/// A password change from standard input: the new password on the first line,
/// the current one (when needed) on the second.
pub fn read_stdin_password_change() -> Result<PasswordChange> {
    let text = read_stdin_password()?;
    let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let password = lines.next().unwrap_or_default().to_string();
    if password.is_empty() {
        return Err(CliError::Usage(
            "the new password on standard input is empty".into(),
        ));
    }
    let old_password = lines.next().filter(|l| !l.is_empty()).map(str::to_string);
    Ok(PasswordChange {
        password,
        old_password,
    })
}

/// A password change asked for on the terminal: the current password (empty for
/// an admin setting someone's), then the new one twice.
pub fn ask_password_change(username: &str) -> Result<PasswordChange> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no terminal to ask for the passwords on: pipe them with --password-stdin".into(),
        ));
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map_err(|err| CliError::Failed(format!("cannot read the password: {err}")))
    };
    let old = ask(format!(
        "Current password of {username} (empty if you are an admin): "
    ))?;
    let password = ask(format!("New password for {username}: "))?;
    if ask("Repeat the new password: ".into())? != password {
        return Err(CliError::Failed("the new passwords differ".into()));
    }
    Ok(PasswordChange {
        password,
        old_password: (!old.is_empty()).then_some(old),
    })
}
