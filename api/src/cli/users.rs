//! Account bootstrap on the command line: `dartts user …`, `dartts token`, partner passwords.

use super::*;

pub(super) async fn user(
    db: &DatabaseConnection,
    policy: &Policy,
    audit: &DbAudit,
    command: UserCommand,
) -> ExitCode {
    // Account changes by an operator are admin changes: audited before they happen.
    let intent = match &command {
        UserCommand::Add {
            username,
            role,
            nation,
        } => Some(json!({ "action": "add", "username": username, "role": role, "nation": nation })),
        UserCommand::Disable { username } => {
            Some(json!({ "action": "disable", "username": username }))
        }
        UserCommand::SetPassword { username } => {
            Some(json!({ "action": "set-password", "username": username }))
        }
        UserCommand::List => None,
    };
    if let Some(detail) = &intent
        && let Err(e) = audit
            .record(cli_event(
                EventType::AdminChange,
                "attempted",
                detail.clone(),
            ))
            .await
    {
        return fail(&e);
    }
    let code = user_command(db, policy, command).await;
    if let Some(detail) = intent {
        let outcome = if code == ExitCode::SUCCESS {
            "ok"
        } else {
            "failed"
        };
        if let Err(e) = audit
            .record(cli_event(EventType::AdminChange, outcome, detail))
            .await
        {
            return fail(&e);
        }
    }
    code
}

pub(super) async fn user_command(
    db: &DatabaseConnection,
    policy: &Policy,
    command: UserCommand,
) -> ExitCode {
    match command {
        UserCommand::Add {
            username,
            role,
            nation,
        } => {
            match accounts::add(db, policy, &username, &role, nation.as_deref(), &operator()).await
            {
                Ok(account) => {
                    println!(
                        "created {} ({}{}) ACTIVE{}",
                        account.username,
                        account.role,
                        account.nation.map(|n| format!(", {n}")).unwrap_or_default(),
                        policy
                            .role_description(&account.role)
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        UserCommand::List => match accounts::list(db).await {
            Ok(rows) => {
                println!(
                    "{:<24} {:<22} {:<6} {:<9} last sign-in",
                    "username", "role", "nation", "status"
                );
                for a in rows {
                    println!(
                        "{:<24} {:<22} {:<6} {:<9} {}",
                        a.username,
                        a.role,
                        a.nation.as_deref().unwrap_or("-"),
                        a.status,
                        a.last_login_at
                            .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339())
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        UserCommand::Disable { username } => match accounts::disable(db, &username).await {
            Ok(_) => {
                println!("disabled {username}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        UserCommand::SetPassword { username } => set_password(db, &username).await,
    }
}

/// `dartts user set-password NAME`: the password is one line on standard input, so it never
/// appears in the process list or shell history (`… < file`, or a pipe from a password
/// manager). Nothing is echoed by us; a terminal echoes what is typed, so prefer a pipe.
pub(super) async fn set_password(db: &DatabaseConnection, username: &str) -> ExitCode {
    match accounts::find(db, username).await {
        Ok(Some(_)) => {}
        Ok(None) => return fail(&format!("no account named {username:?}")),
        Err(e) => return fail(&e),
    }
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) => return fail(&"no password on standard input"),
        Ok(_) => {}
        Err(e) => return fail(&format!("cannot read the password: {e}")),
    }
    // More than the one line is a mistake (a file of several passwords, a pasted block):
    // taking the first would set a password its owner does not know.
    let mut rest = String::new();
    match std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest) {
        Ok(_) if rest.trim().is_empty() => {}
        Ok(_) => return fail(&"standard input holds more than one line: give the password alone"),
        Err(e) => return fail(&format!("cannot read the password: {e}")),
    }
    let password = line
        .strip_suffix('\n')
        .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    let hash = match auth::partner::hash_password(password) {
        Ok(h) => h,
        Err(e) => return fail(&e),
    };
    match accounts::set_password_hash(db, username, &hash).await {
        Ok(_) => {
            println!("password set for {username}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// Prints the token alone on stdout so scripts can capture it.
pub(super) async fn token(
    db: &DatabaseConnection,
    settings: &Settings,
    username: &str,
    ttl_minutes: i64,
) -> ExitCode {
    // With a provider configured the server refuses local tokens anyway; saying so here
    // beats handing out a token that only fails later.
    if let Some(oidc) = &settings.oidc {
        return fail(&format!(
            "DARTTS_OIDC_ISSUER is set ({}): users sign in through single sign-on and local \
             tokens are refused; `dartts token` is for the embedded default and development only",
            oidc.issuer
        ));
    }
    let account = match accounts::find(db, username).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return fail(&format!(
                "no account named {username:?}; create it with `dartts user add`"
            ));
        }
        Err(e) => return fail(&e),
    };
    if account.status != accounts::ACTIVE {
        return fail(&format!(
            "account {username:?} is {}; only ACTIVE accounts get tokens",
            account.status
        ));
    }
    let signer = match LocalSigner::load_or_create(&settings.data_dir) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    match signer.issue(username, ttl_minutes * 60) {
        Ok(token) => {
            if let Err(e) = accounts::touch_login(db, account.id).await {
                return fail(&e);
            }
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
