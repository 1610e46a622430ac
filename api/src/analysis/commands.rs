//! The analysis commands behind `dartts demo-data`, `dartts eval anomalies`,
//! `dartts analysis refresh` and `dartts serve --demo` (cli.rs only parses and dispatches).

use std::path::{Path, PathBuf};

use sea_orm::DatabaseConnection;
use serde_json::json;

use super::anomalies::Options;
use super::demo::{self, Spec};
use super::peers::{Measure, Method, Rule};
use super::{eval, profile_store, rollup};
use crate::accounts;
use crate::audit::{AuditEvent, AuditSink, EventType};
use crate::auth::local_token::LocalSigner;
use crate::config::Settings;
use crate::ingest::{self, Dataset, LoadOutcome, LoadRequest};
use crate::policy::Policy;

/// Rows of the world `serve --demo` loads: enough for peer groups, loaded in seconds.
const DEMO_ROWS: u64 = 20_000;
const DEMO_USER: &str = "demo";

pub fn demo_data(seed: u64, rows: u64, out: &Path) -> Result<String, String> {
    let written = demo::generate(&Spec { seed, rows }, out)
        .map_err(|e| format!("cannot write the demo world into {}: {e}", out.display()))?;
    Ok(format!(
        "wrote {} trade rows, {} partner rows, {} financial rows and {} truth rows into {}\n\
         load with: dartts load trade {dir}/trade.csv --provider US; \
         dartts load trade {dir}/partner_trade.csv --provider {partner}; \
         dartts load financial {dir}/financial.csv; dartts load subjects {dir}/subjects.csv; \
         dartts load sdn {dir}/sdn",
        written.trade_rows,
        written.partner_rows,
        written.financial_rows,
        written.truth_rows,
        out.display(),
        dir = out.display(),
        partner = demo::MIRROR_PARTNER,
    ))
}

/// The price options of `dartts eval` (the API's defaults unless given).
pub fn options(
    method: Option<&str>,
    k: Option<f64>,
    min_peers: Option<u64>,
    min_ratio: Option<f64>,
    same_origin: bool,
) -> Result<Options, String> {
    let default = Rule::default();
    let rule = Rule {
        method: match method.map(str::to_ascii_lowercase).as_deref() {
            None => default.method,
            Some("mad") => Method::Mad,
            Some("iqr") => Method::Iqr,
            Some(other) => return Err(format!("--method {other:?}: expected mad or iqr")),
        },
        k: k.unwrap_or(default.k),
        min_peers: min_peers.unwrap_or(default.min_peers),
        min_ratio: min_ratio.unwrap_or(default.min_ratio),
    };
    rule.validate()?;
    Ok(Options {
        measure: Measure::UnitPrice,
        rule,
        same_origin,
    })
}

pub async fn eval_anomalies(
    db: &DatabaseConnection,
    truth: &Path,
    options: &Options,
) -> Result<String, String> {
    let truth = eval::read_truth(truth)?;
    let lines = eval::run(db, &truth, options).await?;
    Ok(eval::render(&lines))
}

pub async fn refresh(db: &DatabaseConnection) -> Result<String, String> {
    // Timed apart: what each costs a load is the operator's (and the benchmark's) question.
    let started = std::time::Instant::now();
    let n = profile_store::refresh_all(db)
        .await
        .map_err(|e| e.to_string())?;
    let profiles = started.elapsed();
    let sums = rollup::rebuild(db).await.map_err(|e| e.to_string())?;
    let rollups = started.elapsed() - profiles;
    Ok(format!(
        "recomputed {n} peer profiles in {:.1} s and {sums} rollup rows (importer-year and \
         HS6-year totals) in {:.1} s",
        profiles.as_secs_f64(),
        rollups.as_secs_f64()
    ))
}

/// Generates (once) and loads a small demo world into the embedded database, creates the
/// `demo` analyst and returns a token for it.
pub async fn prepare_demo(
    db: &DatabaseConnection,
    settings: &Settings,
    policy: &Policy,
    audit: &dyn AuditSink,
) -> Result<String, String> {
    let dir: PathBuf = settings.data_dir.join("demo-world");
    if !dir.join("trade.csv").is_file() {
        demo_data(1, DEMO_ROWS, &dir)?;
    }
    for (dataset, file, provider) in [
        (Dataset::Trade, "trade.csv", Some("US")),
        (
            Dataset::Trade,
            "partner_trade.csv",
            Some(demo::MIRROR_PARTNER),
        ),
        (Dataset::Financial, "financial.csv", None),
        (Dataset::Subjects, "subjects.csv", None),
        (Dataset::Sdn, "sdn", None),
    ] {
        let request = LoadRequest {
            dataset,
            path: dir.join(file),
            provider: provider.map(str::to_owned),
            profile: None,
            as_of: None,
            strict: false,
            exclusive: false,
            loaded_by: DEMO_USER.into(),
        };
        let outcome = ingest::load(db, settings.instance, &settings.data_dir, &request)
            .await
            .map_err(|e| format!("demo {file}: {e}"))?;
        if let LoadOutcome::Loaded {
            batch_id, accepted, ..
        } = outcome
        {
            let event = AuditEvent::new(EventType::Ingest, "ok")
                .actor(DEMO_USER)
                .source("cli")
                .detail(json!({ "batchId": batch_id, "accepted": accepted, "demo": file }));
            audit.record(event).await.map_err(|e| e.to_string())?;
        }
    }
    if accounts::find(db, DEMO_USER)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        accounts::add(db, policy, DEMO_USER, "HSI_ANALYST", None, DEMO_USER)
            .await
            .map_err(|e| e.to_string())?;
    }
    let signer = LocalSigner::load_or_create(&settings.data_dir).map_err(|e| e.to_string())?;
    signer.issue(DEMO_USER, 8 * 3600).map_err(|e| e.to_string())
}
