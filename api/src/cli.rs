//! The `dartts` command line: serve, load, purge, schema, migrate.

mod eval;
mod load;
mod retention;
mod users;

use eval::{eval, eval_list};
use users::{token, user};

use load::{load_audited, refresh_sdn};
use retention::purge;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand};

use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::auth::local_token::LocalSigner;
use crate::config::{self, DatabaseKind, Settings};
use crate::ingest::{Dataset, LoadRequest};

use crate::admission::Admission;
use crate::audit::commands::AuditCommand;
use crate::audit::{self, AuditEvent, AuditKey, AuditSink, DbAudit, EventType, NoAudit};
use crate::policy::Policy;
use crate::quota::{MemoryQuota, QuotaStore, RedisQuota};
use crate::state::AppState;
use crate::{accounts, analysis, auth, db, export_foreign, graphql, screening, server};

#[derive(Parser, Debug)]
#[command(
    name = "dartts",
    version,
    about = "DARTTS trade-transparency analysis backend"
)]
pub struct Cli {
    /// Optional TOML settings file; `DARTTS_*` environment variables override it.
    #[arg(long, env = "DARTTS_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the GraphQL API (migrates the database first).
    Serve {
        /// Embedded default only: load a small synthetic world with injected anomalies and
        /// print a token for the `demo` analyst.
        #[arg(long)]
        demo: bool,
    },
    /// Write a synthetic world with ground truth (trade.csv, partner_trade.csv, financial.csv,
    /// subjects.csv, sdn/, truth.csv), each loadable with `dartts load`.
    DemoData {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure quality: anomaly detectors and the screening scorer against ground truth.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Analysis maintenance.
    #[command(subcommand)]
    Analysis(AnalysisCommand),
    /// Load a data file as one batch.
    Load {
        dataset: Dataset,
        /// The file (for `sdn`: the folder holding sdn.csv, add.csv, alt.csv, sdn_comments.csv,
        /// or the path of sdn.csv with the others beside it; refused whole unless every file is
        /// there, complete, and every row loads).
        path: PathBuf,
        /// ISO 3166 alpha-2 code of the nation that provided a trade file.
        #[arg(long)]
        provider: Option<String>,
        /// Trade layout: a built-in profile name (`canonical`, `kcs`) or a path to a .toml file.
        #[arg(long)]
        profile: Option<String>,
        /// The date the data describes (YYYY-MM-DD, 1900 to tomorrow); defaults to today.
        #[arg(long, value_parser = load::parse_as_of)]
        as_of: Option<NaiveDate>,
        /// Load nothing if any row is rejected (always so for `sdn`).
        #[arg(long)]
        strict: bool,
        /// Trade, PostgreSQL: hold the trade tables for the whole load (readers wait until it
        /// commits) and rebuild their indexes after the rows instead of updating them row by
        /// row. For a large file into tables that already hold rows, in a quiet hour; a load
        /// into empty tables does this anyway. No effect on SQLite.
        #[arg(long)]
        exclusive: bool,
    },
    /// Fetch and load a data set from its publisher (the scheduled refresh).
    #[command(subcommand)]
    Refresh(RefreshCommand),
    /// Remove every batch loaded longer ago than the retention period: its rows, rejections
    /// and raw files (unless a kept batch shares them). The batch row stays, marked purged.
    /// Audited; meant to run on a schedule.
    Purge {
        /// Retention in years for this run, instead of DARTTS_RETENTION_YEARS (default 10).
        #[arg(long, value_parser = config::retention_years)]
        older_than_years: Option<u32>,
        /// Withdraw this one batch now, whatever its age (a wrong load: another provider,
        /// profile, as-of date or file than meant), instead of those past the retention.
        #[arg(long, conflicts_with = "older_than_years")]
        batch: Option<i64>,
        /// Report what would be purged; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Apply pending migrations and exit.
    Migrate,
    /// Write the US trade rows with partner XX, identities pseudonymized, for XX's instance.
    ExportForeign {
        /// ISO alpha-2 code of the partner nation.
        #[arg(long)]
        partner: String,
        /// Output CSV (canonical trade layout); written atomically.
        #[arg(long)]
        out: PathBuf,
        /// Secret for the keyed pseudonyms (at least 32 bytes); keep it stable across exports.
        #[arg(long, env = "DARTTS_PSEUDONYM_KEY", hide_env_values = true)]
        pseudonym_key: String,
    },
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage local accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Print a token for a local account (embedded default and development only).
    Token {
        username: String,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 480, value_parser = clap::value_parser!(i64).range(1..=10_080))]
        ttl_minutes: i64,
    },
}

#[derive(Subcommand, Debug)]
enum RefreshCommand {
    /// The OFAC SDN list: sdn.csv, add.csv, alt.csv and sdn_comments.csv, checked and loaded
    /// as one batch (nothing happens when the list has not changed). Audited.
    Sdn {
        /// Base URL (https; http only for a loopback host), e.g.
        /// https://www.treasury.gov/ofac/downloads/, or a directory holding the four files.
        #[arg(long)]
        from: String,
        /// The date the list describes (YYYY-MM-DD, 1900 to tomorrow); defaults to today.
        #[arg(long, value_parser = load::parse_as_of)]
        as_of: Option<NaiveDate>,
    },
}

#[derive(Subcommand, Debug)]
enum EvalCommand {
    /// Precision, recall and F1 per anomaly kind against truth.csv, beside baselines.
    Anomalies {
        #[arg(long)]
        truth: PathBuf,
        /// Fence method: mad (default) or iqr.
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        k: Option<f64>,
        #[arg(long)]
        min_peers: Option<u64>,
        #[arg(long)]
        min_ratio: Option<f64>,
        #[arg(long)]
        same_origin: bool,
    },
    /// Precision, recall and F1 of the screening name scorer at the shipped threshold.
    Screening {
        /// Labelled pairs in nomenklatura's `cases.csv` layout (name1, name2, is_match).
        #[arg(long)]
        cases: PathBuf,
        /// A reference run in the `logicv2-frozen.csv` layout, compared on the shared pairs.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Quality and speed against the SDN list and subjects loaded in the database: noisy
    /// spellings of listed names found first, innocent names flagged, time per name.
    ScreeningList {
        #[arg(long, default_value_t = 2021)]
        seed: u64,
        /// Noisy spellings to screen.
        #[arg(long, default_value_t = 2000)]
        names: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AnalysisCommand {
    /// Recompute every peer profile (after a failed refresh, or rows loaded before the
    /// profiles existed are loaded again).
    Refresh,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create an ACTIVE account (operator bootstrap).
    Add {
        username: String,
        #[arg(long)]
        role: String,
        /// ISO alpha-2 nation, for nation-scoped roles (FOREIGN_PARTNER).
        #[arg(long)]
        nation: Option<String>,
    },
    /// List accounts.
    List,
    /// Disable an account: it gets no data from the next request on.
    Disable { username: String },
    /// Set the password a foreign partner signs in with over the mTLS listener (`login`),
    /// read as one line from standard input; clears the failed sign-in count.
    SetPassword { username: String },
}

/// The process entry point shared by every build of the binary.
pub fn main() -> ExitCode {
    // Dropped last: flushes any spans still waiting for export.
    let _telemetry = match crate::telemetry::init() {
        Ok(telemetry) => telemetry,
        Err(e) => return fail(&e),
    };
    let cli = Cli::parse();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => fail(&format!("cannot start the async runtime: {e}")),
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    if let Command::Schema = cli.command {
        print!("{}", graphql::sdl());
        return ExitCode::SUCCESS;
    }
    if let Command::DemoData { seed, rows, out } = &cli.command {
        return done(analysis::commands::demo_data(*seed, *rows, out));
    }
    if let Command::Eval(command @ EvalCommand::Screening { .. }) = cli.command {
        return eval(command);
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // The policy is checked before anything connects: a bad policy file stops start-up.
    let policy = match Policy::load(
        settings.policy_dir.as_deref(),
        &graphql::sdl(),
        accounts::ROLES,
    ) {
        Ok(p) => Arc::new(p.for_instance(settings.instance)),
        Err(e) => return fail(&e),
    };
    for field in policy.nulls_parents() {
        tracing::warn!(
            "policy: {field}; the field is non-null, so for a role without that category GraphQL nulls the object holding it"
        );
    }
    let db = match db::connect(&settings).await {
        Ok(db) => db,
        Err(e) => return fail(&e),
    };
    let audit_key = match AuditKey::from_settings(&settings) {
        Ok(k) => Arc::new(k),
        Err(e) => return fail(&e),
    };
    let audit = DbAudit::new(db.clone(), settings.instance, audit_key.clone());
    match cli.command {
        Command::Schema
        | Command::DemoData { .. }
        | Command::Eval(EvalCommand::Screening { .. }) => ExitCode::SUCCESS,
        Command::Eval(EvalCommand::ScreeningList { seed, names, json }) => {
            eval_list(&db, seed, names, json).await
        }
        Command::Eval(EvalCommand::Anomalies {
            truth,
            method,
            k,
            min_peers,
            min_ratio,
            same_origin,
        }) => match analysis::commands::options(
            method.as_deref(),
            k,
            min_peers,
            min_ratio,
            same_origin,
        ) {
            Ok(options) => done(analysis::commands::eval_anomalies(&db, &truth, &options).await),
            Err(e) => fail(&e),
        },
        Command::Analysis(AnalysisCommand::Refresh) => done(analysis::commands::refresh(&db).await),
        Command::Migrate => {
            eprintln!("dartts: database {} is up to date", settings.database_url);
            ExitCode::SUCCESS
        }
        Command::User(command) => user(&db, &policy, &audit, command).await,
        Command::Purge {
            older_than_years,
            batch,
            dry_run,
        } => {
            let due = match batch {
                Some(id) => crate::purge::Due::Batch(id),
                None => crate::purge::Due::Older {
                    retention_years: older_than_years.unwrap_or(settings.retention_years),
                },
            };
            purge(&db, &audit, &settings, due, dry_run).await
        }
        Command::Audit(command) => audit::commands::run(&db, &audit_key, command).await,
        Command::ExportForeign {
            partner,
            out,
            pseudonym_key,
        } => {
            let key = match export_foreign::PseudonymKey::new(&pseudonym_key) {
                Ok(k) => k,
                Err(e) => return fail(&e),
            };
            let intent = json!({ "partner": partner, "out": out.display().to_string() });
            if let Err(e) = audit
                .record(cli_event(EventType::Export, "attempted", intent.clone()))
                .await
            {
                return fail(&e);
            }
            let result = export_foreign::export(&db, settings.instance, &partner, &key, &out).await;
            let (outcome, rows) = match &result {
                Ok(summary) => ("ok", summary.rows),
                Err(_) => ("failed", 0),
            };
            let event = cli_event(EventType::Export, outcome, intent)
                .records(i64::try_from(rows).unwrap_or(i64::MAX));
            if let Err(e) = audit.record(event).await {
                return fail(&e);
            }
            match result {
                Ok(summary) => {
                    println!("wrote {} rows to {}", summary.rows, out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Token {
            username,
            ttl_minutes,
        } => token(&db, &settings, &username, ttl_minutes).await,
        Command::Serve { demo } => {
            announce(&settings);
            if demo {
                if settings.database_kind != DatabaseKind::Sqlite {
                    return fail(&"--demo is for the embedded default (SQLite) only");
                }
                match analysis::commands::prepare_demo(&db, &settings, &policy, &audit).await {
                    Ok(token) => eprintln!(
                        "dartts: demo world loaded; analyst `demo` token:\n{token}\n\
                         try: {{ priceAnomalies(first: 5) {{ totalCount edges {{ node {{ ratio \
                         direction valueMoved peerMedian record {{ declarationId hsCode }} }} }} }} }}"
                    ),
                    Err(e) => return fail(&e),
                }
            }
            // Requests are answered from a pool that holds them to the time limit; the one the
            // migrations and the demo load used has none.
            let db = match db::serving(&settings, db).await {
                Ok(db) => db,
                Err(e) => return fail(&e),
            };
            let signer = match LocalSigner::load_or_create(&settings.data_dir) {
                Ok(s) => Arc::new(s),
                Err(e) => return fail(&e),
            };
            // Discovery happens here, before listening: a provider that is down or
            // misdescribed stops start-up instead of failing every sign-in later.
            let (oidc, login) = match &settings.oidc {
                None => (None, None),
                Some(config) => match auth::login::start(config).await {
                    Ok((verifier, flow)) => {
                        let sign_in = flow.as_ref().map_or("", |_| "; sign-in at /auth/login");
                        eprintln!(
                            "dartts: single sign-on through {} (local tokens refused){sign_in}",
                            config.issuer
                        );
                        (Some(Arc::new(verifier)), flow.map(Arc::new))
                    }
                    Err(e) => return fail(&e),
                },
            };
            let quota: Arc<dyn QuotaStore> = match &settings.redis_url {
                None => Arc::new(MemoryQuota::default()),
                Some(url) => match RedisQuota::connect(url).await {
                    Ok(store) => Arc::new(store),
                    Err(e) => return fail(&e),
                },
            };
            eprintln!("dartts: {}", quota.describe());
            // Made before listening: it hashes the dummy password that unknown usernames are
            // checked against.
            let partner_login = match &settings.tls {
                None => None,
                Some(_) => match auth::partner::PartnerLogin::new(settings.login_max_failures) {
                    Ok(p) => Some(Arc::new(p)),
                    Err(e) => return fail(&e),
                },
            };
            // Built before listening, so the first screening request finds the lists.
            let screening = match screening::Screening::start(db.clone()).await {
                Ok(s) => s,
                Err(e) => return fail(&format!("cannot build the screening index: {e:?}")),
            };
            let audit: Arc<dyn AuditSink> = if settings.audit {
                match db::connect_audit(&settings, &db).await {
                    Ok(audit_db) => {
                        Arc::new(DbAudit::new(audit_db, settings.instance, audit_key.clone()))
                    }
                    Err(e) => return fail(&e),
                }
            } else {
                eprintln!(
                    "dartts: WARNING: audit log OFF (DARTTS_AUDIT=off-for-benchmarks); never run like this with real users"
                );
                Arc::new(NoAudit)
            };
            let cursors = match graphql::CursorKey::derive(&audit_key) {
                Ok(k) => Arc::new(k),
                Err(e) => return fail(&format!("cannot seed the cursor nonces: {e}")),
            };
            let state = AppState {
                cursors,
                table_plans: Arc::default(),
                admission: Admission::new(settings.operations.analysis_concurrency),
                screening,
                audit,
                db,
                settings: Arc::new(settings),
                policy,
                signer,
                oidc,
                login,
                quota,
                partner_login,
            };
            let graphiql = state.settings.graphiql;
            let result = server::serve(
                state,
                |addr| {
                    eprintln!("dartts: serving GraphQL at http://{addr}/graphql");
                    if graphiql {
                        eprintln!(
                            "dartts: GraphiQL at http://{addr}/graphql (open it in a browser)"
                        );
                    }
                },
                |addr| {
                    eprintln!(
                        "dartts: serving mTLS GraphQL at https://{addr}/graphql (client \
                         certificate required; partners sign in with `login`)"
                    );
                },
            )
            .await;
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Load {
            dataset,
            path,
            provider,
            profile,
            as_of,
            strict,
            exclusive,
        } => {
            let request = LoadRequest {
                dataset,
                path,
                provider,
                profile,
                as_of,
                strict,
                exclusive,
                loaded_by: operator(),
            };
            // Whether the load held the trade tables from their readers is the auditors' to see.
            let intent = json!({
                "dataset": dataset.as_str(),
                "path": request.path.display().to_string(),
                "exclusive": request.exclusive,
            });
            if let Err(e) = audit
                .record(cli_event(EventType::Ingest, "attempted", intent))
                .await
            {
                return fail(&e);
            }
            load_audited(&db, &settings, &audit, &request).await
        }
        Command::Refresh(RefreshCommand::Sdn { from, as_of }) => {
            refresh_sdn(&db, &settings, &audit, &from, as_of).await
        }
    }
}

/// An audit event for an operator command: the operator's login name, source `cli`.
fn cli_event(
    event_type: EventType,
    outcome: &'static str,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent::new(event_type, outcome)
        .actor(operator())
        .source("cli")
        .detail(detail)
}

/// Says plainly what kind of node this is, so nobody mistakes the embedded default for a
/// production deployment.
fn announce(settings: &Settings) {
    eprintln!("dartts: {} instance", settings.instance.as_str());
    match settings.database_kind {
        DatabaseKind::Sqlite => eprintln!(
            "dartts: embedded SQLite database {} and its audit log beside it (`-audit`; single node; set DARTTS_DATABASE_URL=postgres://… for production)",
            settings.database_url
        ),
        DatabaseKind::Postgres => {
            eprintln!("dartts: PostgreSQL database {}", settings.database_url)
        }
    }
}

/// Who ran the load, for the batch record: the operator's login name.
fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "operator".to_owned())
}

/// Prints a command's report, or fails with its error.
fn done(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("dartts: error: {err}");
    ExitCode::FAILURE
}
