//! `dartts purge`: batches past the retention period (or one batch withdrawn) deleted with their
//! rows and raw files, then the peer statistics recomputed without them.

use super::*;
use crate::purge::{self, Due, PurgeError, PurgeReport, PurgeRequest};

pub(super) async fn purge(
    db: &DatabaseConnection,
    audit: &DbAudit,
    settings: &Settings,
    due: Due,
    dry_run: bool,
) -> ExitCode {
    let request = PurgeRequest {
        due,
        dry_run,
        actor: operator(),
    };
    let result = purge::run(db, audit, &settings.data_dir, &request, Utc::now()).await;
    match result {
        Ok(report) => {
            print_purge(&report);
            if dry_run {
                return ExitCode::SUCCESS;
            }
            // Purged trade rows must not linger in the peer statistics.
            done(analysis::commands::refresh(db).await)
        }
        Err(PurgeError::Incomplete { report, cause }) => {
            print_purge(&report);
            fail(&PurgeError::Incomplete { report, cause })
        }
        Err(e) => fail(&e),
    }
}

/// One line per batch, then the totals; a dry run says plainly that nothing was deleted.
fn print_purge(report: &PurgeReport) {
    // Which batches were due, as the summary lines say it.
    let due = match (report.due, report.cutoff) {
        (Due::Older { retention_years }, Some(cutoff)) => format!(
            "loaded before {} (retention {retention_years} years)",
            cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        (Due::Older { retention_years }, None) => format!("(retention {retention_years} years)"),
        (Due::Batch(_), _) => "withdrawn".to_owned(),
    };
    let (verb, would) = if report.dry_run {
        ("would purge", "would be ")
    } else {
        ("purged", "")
    };
    if report.batches.is_empty() {
        println!("nothing to purge: no batch {due}");
    }
    for b in &report.batches {
        println!(
            "{verb} batch {} ({}, {}, loaded {}): {}",
            b.id,
            b.dataset,
            b.file_name,
            b.loaded_at.format("%Y-%m-%d"),
            table_counts(&b.rows)
        );
    }
    if !report.batches.is_empty() {
        println!(
            "{} batch(es) {due} {would}purged: {} rows ({})",
            report.batches.len(),
            report.total_rows(),
            table_counts(&report.rows_by_table())
        );
    }
    if !report.raw_files_removed.is_empty() || !report.raw_files_shared.is_empty() {
        println!(
            "raw files: {} {would}removed, {} kept (still used by a kept batch)",
            report.raw_files_removed.len(),
            report.raw_files_shared.len()
        );
    }
    if report.dry_run {
        println!("dry run: nothing was deleted");
    }
}

fn table_counts(rows: &std::collections::BTreeMap<&'static str, u64>) -> String {
    if rows.is_empty() {
        return "no rows".to_owned();
    }
    rows.iter()
        .map(|(table, n)| format!("{table} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
