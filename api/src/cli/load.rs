//! `dartts load` and `dartts refresh`: one audited batch, and what is printed about it.

use std::process::ExitCode;

use chrono::{Datelike, NaiveDate, Utc};
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::{cli_event, fail, operator};
use crate::audit::{AuditSink, DbAudit, EventType};
use crate::config::Settings;
use crate::ingest::{self, Dataset, IngestError, LoadOutcome, LoadRequest, Rejections, refresh};

/// Loads one batch and audits the outcome (the `attempted` event is the caller's).
pub(super) async fn load_audited(
    db: &DatabaseConnection,
    settings: &Settings,
    audit: &DbAudit,
    request: &LoadRequest,
) -> ExitCode {
    let result = ingest::load(db, settings.instance, &settings.data_dir, request).await;
    let (outcome, detail) = match &result {
        Ok(LoadOutcome::Loaded {
            batch_id,
            sha256,
            accepted,
            rejections,
            unread_columns,
            ..
        }) => (
            "ok",
            json!({ "batchId": batch_id, "sha256": sha256, "accepted": accepted, "rejected": rejections.total, "unreadColumns": unread_columns }),
        ),
        Ok(LoadOutcome::AlreadyLoaded { batch_id, sha256 }) => (
            "ok",
            json!({ "batchId": batch_id, "sha256": sha256, "alreadyLoaded": true }),
        ),
        Err(e) => ("failed", json!({ "error": e.to_string() })),
    };
    if let Err(e) = audit
        .record(cli_event(EventType::Ingest, outcome, detail))
        .await
    {
        return fail(&e);
    }
    report(result)
}

/// `dartts refresh sdn`: audited as an ingest from `from`; fetched into a scratch directory
/// under the data dir, then loaded like `dartts load sdn`, whose checks refuse a set that is not
/// the whole list.
pub(super) async fn refresh_sdn(
    db: &DatabaseConnection,
    settings: &Settings,
    audit: &DbAudit,
    from: &str,
    as_of: Option<NaiveDate>,
) -> ExitCode {
    let intent = json!({ "dataset": "sdn", "refreshFrom": from });
    if let Err(e) = audit
        .record(cli_event(EventType::Ingest, "attempted", intent))
        .await
    {
        return fail(&e);
    }
    let fetched = async {
        let source = refresh::Source::parse(from)?;
        std::fs::create_dir_all(&settings.data_dir)?;
        let scratch = tempfile::tempdir_in(&settings.data_dir)?;
        let dir = source.fetch(scratch.path()).await?;
        Ok::<_, refresh::RefreshError>((scratch, dir))
    }
    .await;
    let (_scratch, dir) = match fetched {
        Ok(found) => found,
        Err(e) => {
            let detail = json!({ "error": e.to_string() });
            if let Err(audit_error) = audit
                .record(cli_event(EventType::Ingest, "failed", detail))
                .await
            {
                return fail(&audit_error);
            }
            return fail(&e);
        }
    };
    let request = LoadRequest {
        dataset: Dataset::Sdn,
        path: dir,
        provider: None,
        profile: None,
        as_of,
        strict: false,
        exclusive: false,
        loaded_by: operator(),
    };
    load_audited(db, settings, audit, &request).await
}

fn report(result: Result<LoadOutcome, IngestError>) -> ExitCode {
    match result {
        Ok(LoadOutcome::AlreadyLoaded { batch_id, sha256 }) => {
            println!("already loaded as batch {batch_id} (sha256 {sha256}); nothing done");
            ExitCode::SUCCESS
        }
        Ok(LoadOutcome::Loaded {
            batch_id,
            sha256,
            accepted,
            per_file,
            rejections,
            unread_columns,
        }) => {
            println!(
                "batch {batch_id}: {accepted} rows accepted, {} rejected (sha256 {sha256})",
                rejections.total
            );
            if !unread_columns.is_empty() {
                println!(
                    "columns not loaded (the layout has no field for them; the kept raw file \
                     has them): {}",
                    unread_columns.join(", ")
                );
            }
            if per_file.len() > 1 {
                for (file, n) in &per_file {
                    println!("  {file}: {n} rows accepted");
                }
            }
            show(&rejections);
            if rejections.total > rejections.first.len() as u64 {
                println!(
                    "… and {} more; all are listed in Batch.rejections (1,000 at a time, by offset)",
                    rejections.total - rejections.first.len() as u64
                );
            }
            ExitCode::SUCCESS
        }
        Err(
            ref e @ (IngestError::StrictRejected(ref rejections)
            | IngestError::SdnRejected(ref rejections)),
        ) => {
            show(rejections);
            if rejections.total > rejections.first.len() as u64 {
                println!(
                    "… and {} more",
                    rejections.total - rejections.first.len() as u64
                );
            }
            fail(&e)
        }
        Err(e) => fail(&e),
    }
}

/// The rejections a load names on stdout; every one is stored with the batch.
fn show(rejections: &Rejections) {
    for r in &rejections.first {
        println!("rejected {} line {}: {}", r.file, r.line, r.reason);
    }
}

/// `--as-of`: staleness is judged from it and the newest as-of of a data set wins, so a typo
/// far in the future would switch staleness warnings off until that batch is purged, ten years
/// on. A date after tomorrow (a day's grace for the operator's time zone) or before 1900 is
/// refused, and so is anything but four-digit-year `YYYY-MM-DD` (chrono also takes `+99999`).
pub(super) fn parse_as_of(s: &str) -> Result<NaiveDate, String> {
    as_of_date(s, Utc::now().date_naive())
}

fn as_of_date(s: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let date = shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("{s:?} is not a YYYY-MM-DD date"))?;
    let latest = today.succ_opt().unwrap_or(today);
    if date > latest {
        Err(format!(
            "{s} is in the future: the data cannot describe a day after {latest}"
        ))
    } else if date.year() < 1900 {
        Err(format!("{s} is before 1900"))
    } else {
        Ok(date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_a_plausible_past_date() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        for ok in ["2026-12-07", "2026-12-06", "2021-07-01", "1900-01-01"] {
            assert_eq!(as_of_date(ok, today).unwrap().to_string(), ok, "{ok}");
        }
        for (bad, why) in [
            ("2026-12-08", "in the future"),
            ("2999-01-01", "in the future"),
            ("1899-12-31", "before 1900"),
            ("0000-01-01", "before 1900"),
            ("+99999-01-01", "not a YYYY-MM-DD"),
            ("+2023-01-01", "not a YYYY-MM-DD"),
            (" 2023-01-01", "not a YYYY-MM-DD"),
            ("2023-02-30", "not a YYYY-MM-DD"),
        ] {
            assert!(as_of_date(bad, today).unwrap_err().contains(why), "{bad}");
        }
    }
}
