//! Progress of a long `dartts load` on a terminal: rows per second and bytes read of the total.
//! Drawn on standard error only when it is a terminal (indicatif hides the bar otherwise), so
//! scripts, cron jobs and the tests see exactly the counts printed at the end.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Bytes of the input files already read to the end.
    done_bytes: u64,
}

impl Progress {
    /// A bar over `total_bytes`, the sum of the input files' sizes.
    pub fn new(total_bytes: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        // A template that fails to parse only loses the layout, never the load.
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {msg}",
        ) {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
            done_bytes: 0,
        }
    }

    /// `rows` read so far in this load, `file_bytes` read of the current file.
    pub fn update(&self, rows: u64, file_bytes: u64) {
        self.bar.set_position(self.done_bytes + file_bytes);
        self.bar
            .set_message(rate_message(rows, self.started.elapsed().as_secs_f64()));
    }

    pub fn file_done(&mut self, file_bytes: u64) {
        self.done_bytes += file_bytes;
        self.bar.set_position(self.done_bytes);
    }

    /// Removes the bar so the final counts stand alone.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn rate_message(rows: u64, seconds: f64) -> String {
    let per_second = if seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    };
    format!("{rows} rows ({per_second:.0} rows/s)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_rows_over_elapsed_time() {
        assert_eq!(rate_message(10_000, 2.0), "10000 rows (5000 rows/s)");
        assert_eq!(rate_message(0, 0.0), "0 rows (0 rows/s)");
    }
}
