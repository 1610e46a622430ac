//! `dartts eval screening` and `dartts eval screening-list`: the name scorer's quality on
//! labelled pairs, and against the loaded lists.

use super::*;

pub(super) async fn eval_list(
    db: &DatabaseConnection,
    seed: u64,
    names: usize,
    json: bool,
) -> ExitCode {
    let started = std::time::Instant::now();
    let listed = match screening::current_batches(db).await {
        Ok(sdn) => screening::load(db, sdn).await,
        Err(e) => Err(e),
    };
    let listed = match listed {
        Ok(l) => l,
        Err(e) => return fail(&format!("cannot read the lists: {e:?}")),
    };
    let read_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report = screening::listcheck::check(listed, seed, names);
    if json {
        println!("{}", json!({ "readMs": read_ms, "report": report }));
    } else {
        println!(
            "{} parties, {} names: read {read_ms:.0} ms, index build {:.0} ms",
            report.entries, report.names, report.build_ms
        );
        println!(
            "noisy spellings ({}): right entry first {:.1} %; per name median {:.3} ms, p99 {:.3} ms",
            report.noisy,
            report.found_first * 100.0,
            report.median_ms,
            report.p99_ms
        );
        println!(
            "innocent names ({}): {:.2} % score >= 0.85 against someone",
            report.innocent,
            report.innocent_flagged * 100.0
        );
    }
    ExitCode::SUCCESS
}

pub(super) fn eval(command: EvalCommand) -> ExitCode {
    let EvalCommand::Screening {
        cases,
        reference,
        json,
    } = command
    else {
        return fail(&"this evaluation needs the database");
    };
    let open = |p: &PathBuf| {
        std::fs::File::open(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let cases = match open(&cases).and_then(screening::eval::read_cases) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let reference = match reference.map(|r| open(&r).and_then(screening::eval::read_reference)) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => return fail(&e),
    };
    let report = screening::eval::evaluate(&cases, reference.as_ref());
    if json {
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(&e.to_string()),
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "dartts   threshold {:.2}  pairs {}  precision {:.3}  recall {:.3}  F1 {:.3}",
        report.threshold, report.pairs, report.precision, report.recall, report.f1
    );
    if let (Some(theirs), Some(ours)) = (report.reference, report.ours_on_reference_pairs) {
        println!(
            "on the {} pairs the reference holds: dartts P {:.3} R {:.3} F1 {:.3} | reference P {:.3} R {:.3} F1 {:.3}",
            ours.pairs,
            ours.precision,
            ours.recall,
            ours.f1,
            theirs.precision,
            theirs.recall,
            theirs.f1
        );
    }
    ExitCode::SUCCESS
}
