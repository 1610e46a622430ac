//! Settings for running the service rather than for what it serves: how often the SDN list and
//! TECS extracts must be refreshed before answers relying on them are flagged stale, where
//! Prometheus scrapes `/metrics`, how long one request may run and how many analyses run at once.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, non_empty};
use crate::freshness::{SDN_CADENCE_DAYS, SUBJECTS_CADENCE_DAYS};

/// Ten years: beyond that "stale" means nothing, and a typo of a few more digits is caught.
pub const MAX_CADENCE_DAYS: u32 = 3_653;

/// A minute: ten times the slowest analysis an analyst runs on PostgreSQL at 1M rows (red flags
/// with their count, 6–8 s; BENCHMARKS.md), short enough that a query nobody waits for any more
/// does not hold a core and a connection for long.
pub const DEFAULT_REQUEST_TIME_LIMIT_SECONDS: u64 = 60;
/// An hour: a longer limit is no limit for an interactive API.
pub const MAX_REQUEST_TIME_LIMIT_SECONDS: u64 = 3_600;
/// More turns than this is no queue at all.
pub const MAX_ANALYSIS_CONCURRENCY: usize = 1_024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operations {
    /// Days after the newest SDN list's as-of date before SDN answers carry a stale warning.
    pub sdn_cadence_days: u32,
    /// The same for TECS subject records.
    pub subjects_cadence_days: u32,
    /// Where `/metrics` is served, apart from the API listeners; unset: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// How long one query (a GraphQL query, an export's count or one of its pages) may run
    /// before it is stopped and refused `TIMEOUT` (`time_limit`).
    pub request_time_limit: Duration,
    /// How many analyses run at once, the others waiting their turn (`admission`); by
    /// default the cores this process may use.
    pub analysis_concurrency: usize,
}

pub(super) fn operations(
    sdn_cadence_days: Option<String>,
    subjects_cadence_days: Option<String>,
    metrics_listen: Option<String>,
    request_time_limit: Option<String>,
    analysis_concurrency: Option<String>,
) -> Result<Operations, ConfigError> {
    let metrics_listen = match non_empty(metrics_listen) {
        None => None,
        Some(text) => Some(text.trim().parse().map_err(|_| ConfigError::Invalid {
            setting: "DARTTS_METRICS_LISTEN",
            reason: format!("{text:?} is not an address:port such as 0.0.0.0:9464"),
        })?),
    };
    Ok(Operations {
        sdn_cadence_days: cadence(
            sdn_cadence_days,
            SDN_CADENCE_DAYS,
            "DARTTS_SDN_CADENCE_DAYS",
        )?,
        subjects_cadence_days: cadence(
            subjects_cadence_days,
            SUBJECTS_CADENCE_DAYS,
            "DARTTS_SUBJECTS_CADENCE_DAYS",
        )?,
        metrics_listen,
        request_time_limit: time_limit(request_time_limit)?,
        analysis_concurrency: concurrency(analysis_concurrency)?,
    })
}

fn concurrency(value: Option<String>) -> Result<usize, ConfigError> {
    let Some(text) = non_empty(value) else {
        return Ok(std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    };
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_ANALYSIS_CONCURRENCY).contains(n))
        .ok_or_else(|| ConfigError::Invalid {
            setting: "DARTTS_ANALYSIS_CONCURRENCY",
            reason: format!("{text:?} is not a whole number from 1 to {MAX_ANALYSIS_CONCURRENCY}"),
        })
}

fn time_limit(value: Option<String>) -> Result<Duration, ConfigError> {
    let Some(text) = non_empty(value) else {
        return Ok(Duration::from_secs(DEFAULT_REQUEST_TIME_LIMIT_SECONDS));
    };
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=MAX_REQUEST_TIME_LIMIT_SECONDS).contains(n))
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::Invalid {
            setting: "DARTTS_REQUEST_TIME_LIMIT",
            reason: format!(
                "{text:?} is not a whole number of seconds from 1 to \
                 {MAX_REQUEST_TIME_LIMIT_SECONDS}"
            ),
        })
}

fn cadence(value: Option<String>, default: u32, setting: &'static str) -> Result<u32, ConfigError> {
    let Some(text) = non_empty(value) else {
        return Ok(default);
    };
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_CADENCE_DAYS).contains(n))
        .ok_or_else(|| ConfigError::Invalid {
            setting,
            reason: format!("{text:?} is not a whole number of days from 1 to {MAX_CADENCE_DAYS}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadences_default_to_the_published_rhythm_and_are_bounded() {
        let ops = operations(None, Some(" ".into()), None, None, None).unwrap();
        assert_eq!(ops.sdn_cadence_days, SDN_CADENCE_DAYS);
        assert_eq!(ops.subjects_cadence_days, SUBJECTS_CADENCE_DAYS);
        assert_eq!(ops.metrics_listen, None);
        let ops = operations(Some("7".into()), Some(" 3653 ".into()), None, None, None).unwrap();
        assert_eq!(
            (ops.sdn_cadence_days, ops.subjects_cadence_days),
            (7, 3_653)
        );
        for bad in ["0", "3654", "-1", "1.5", "monthly"] {
            let err = operations(Some(bad.into()), None, None, None, None).unwrap_err();
            assert!(
                err.to_string().contains("DARTTS_SDN_CADENCE_DAYS"),
                "{bad}: {err}"
            );
            let err = operations(None, Some(bad.into()), None, None, None).unwrap_err();
            assert!(
                err.to_string().contains("DARTTS_SUBJECTS_CADENCE_DAYS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_metrics_listener_is_an_address() {
        let ops = operations(None, None, Some("127.0.0.1:9464".into()), None, None).unwrap();
        assert_eq!(ops.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        let err = operations(None, None, Some("9464".into()), None, None).unwrap_err();
        assert!(err.to_string().contains("DARTTS_METRICS_LISTEN"), "{err}");
    }

    #[test]
    fn the_analysis_concurrency_defaults_to_the_cores_and_is_bounded() {
        let turns = |text: Option<&str>| {
            operations(None, None, None, None, text.map(str::to_owned))
                .map(|o| o.analysis_concurrency)
        };
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(turns(None).unwrap(), cores);
        assert_eq!(turns(Some(" ")).unwrap(), cores);
        assert_eq!(turns(Some("1")).unwrap(), 1);
        assert_eq!(turns(Some(" 1024 ")).unwrap(), 1_024);
        for bad in ["0", "1025", "-1", "2.5", "cores"] {
            let err = turns(Some(bad)).unwrap_err();
            assert!(
                err.to_string().contains("DARTTS_ANALYSIS_CONCURRENCY"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_request_time_limit_is_whole_seconds_within_bounds() {
        let limit = |text: Option<&str>| {
            operations(None, None, None, text.map(str::to_owned), None)
                .map(|o| o.request_time_limit)
        };
        assert_eq!(limit(None).unwrap(), Duration::from_secs(60));
        assert_eq!(limit(Some(" ")).unwrap(), Duration::from_secs(60));
        assert_eq!(limit(Some("1")).unwrap(), Duration::from_secs(1));
        assert_eq!(limit(Some(" 3600 ")).unwrap(), Duration::from_secs(3_600));
        for bad in ["0", "3601", "-1", "1.5", "60s", "forever"] {
            let err = limit(Some(bad)).unwrap_err();
            assert!(
                err.to_string().contains("DARTTS_REQUEST_TIME_LIMIT"),
                "{bad}: {err}"
            );
        }
    }
}
