//! `dartts audit verify` and `dartts audit checkpoint`.

use std::path::PathBuf;
use std::process::ExitCode;

use entities::audit_event;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{AuditError, AuditKey, VerifyReport, chain, checkpoint, read_head};

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the whole chain with the audit key (and against signed checkpoints); exits
    /// non-zero and names the first problem if anything was removed or rewritten.
    Verify {
        /// A file written by `dartts audit checkpoint`: every head it recorded must still be
        /// in the log, unchanged.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Append a signed checkpoint of the chain's head to FILE; run on a schedule and keep the
    /// file where the database host cannot write.
    Checkpoint {
        #[arg(long)]
        out: PathBuf,
    },
}

pub async fn run(db: &DatabaseConnection, key: &AuditKey, command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { checkpoint } => verify_command(db, key, checkpoint).await,
        AuditCommand::Checkpoint { out } => {
            let taken = match checkpoint::take(db, key).await {
                Ok(c) => c,
                Err(e) => return failed(&e),
            };
            if let Err(e) = checkpoint::append(&out, &taken) {
                return failed(&format!("{}: {e}", out.display()));
            }
            println!(
                "checkpoint: event {} hash {} at {} appended to {}",
                taken.id,
                taken.hash,
                taken.at,
                out.display()
            );
            ExitCode::SUCCESS
        }
    }
}

async fn verify_command(
    db: &DatabaseConnection,
    key: &AuditKey,
    checkpoint_file: Option<PathBuf>,
) -> ExitCode {
    let report = match verify(db, key).await {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    if let Some((id, problem)) = &report.problem {
        println!(
            "audit log BROKEN at event {id}: {problem} ({} events read)",
            report.events
        );
        return ExitCode::FAILURE;
    }
    if let Some(path) = checkpoint_file {
        let checkpoints = match checkpoint::read(&path) {
            Ok(c) => c,
            Err(e) => return failed(&e),
        };
        match checkpoint::compare(db, key, &checkpoints).await {
            Ok(None) => println!("{} checkpoints match", checkpoints.len()),
            Ok(Some(problem)) => {
                println!("audit log BROKEN: {problem}");
                return ExitCode::FAILURE;
            }
            Err(e) => return failed(&e),
        }
    }
    println!(
        "audit log intact: {} events, head {}",
        report.events, report.last_hash
    );
    if report.unkeyed > 0 {
        println!(
            "note: events 1 to {} predate the audit key and are checked with plain SHA-256",
            report.keyed_from - 1
        );
    }
    ExitCode::SUCCESS
}

fn failed(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("dartts: error: {error}");
    ExitCode::FAILURE
}

/// Checks the whole chain: ids contiguous from 1, each row's hash (keyed from `keyed_from`
/// on), each link, and the head.
pub async fn verify(db: &DatabaseConnection, key: &AuditKey) -> Result<VerifyReport, AuditError> {
    const PAGE: u64 = 1_000;
    let head = read_head(db).await?;
    let mut checker = chain::Checker::new(head.chain(key));
    let mut after = 0i64;
    loop {
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(after))
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in &rows {
            checker.check(row);
        }
    }
    // Read again: appends may have happened while the rows were read.
    let head = read_head(db).await?;
    Ok(checker.finish(head.last_id, &head.last_hash))
}
