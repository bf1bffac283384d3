//! The table: medians of each server's runs, side by side with their ratio,
//! and the runs alternated between the servers.

use crate::server::Kind;

/// One cell of the table.
pub enum Cell {
    Number(f64),
    Text(String),
    Failed,
}

pub struct Row {
    pub scenario: String,
    /// wschat, relay.
    pub cells: [Cell; 2],
    pub decimals: usize,
}

/// `1234567.8` with 0 decimals -> `1,234,568`.
pub fn grouped(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = text.split_at(text.find('.').unwrap_or(text.len()));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out + frac
}

pub fn print_table(rows: &[Row]) {
    println!("| scenario | wschat | relay | wschat/relay |");
    println!("|----------|-------:|------:|-------------:|");
    for row in rows {
        let show = |cell: &Cell| match cell {
            Cell::Number(v) if v.is_finite() => grouped(*v, row.decimals),
            Cell::Number(_) => "n/a".into(),
            Cell::Text(t) => t.clone(),
            Cell::Failed => "failed".into(),
        };
        let ratio = match &row.cells {
            [Cell::Number(w), Cell::Number(r)] if *r > 0.0 && w.is_finite() => {
                format!("{:.2}", w / r)
            }
            _ => "-".into(),
        };
        println!(
            "| {} | {} | {} | {ratio} |",
            row.scenario,
            show(&row.cells[0]),
            show(&row.cells[1])
        );
    }
}

/// The median of some runs' figures (the mean of the middle two for an
/// even count); `Failed` if no run produced one.
pub fn median(mut values: Vec<f64>) -> Cell {
    if values.is_empty() {
        return Cell::Failed;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Cell::Number(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Each server's successful runs of one scenario, in run order.
pub type Runs<T> = [Vec<T>; 2];

pub fn row<T>(
    runs: &Runs<T>,
    scenario: String,
    decimals: usize,
    figure: impl Fn(&T) -> f64,
) -> Row {
    Row {
        scenario,
        cells: [0, 1].map(|k| median(runs[k].iter().map(&figure).collect())),
        decimals,
    }
}

/// "0" when every run was exact, else the sum, loudly.
pub fn correctness<T>(
    runs: &Runs<T>,
    failures: &[usize; 2],
    faults: impl Fn(&T) -> u64,
) -> [Cell; 2] {
    [0, 1].map(|k| {
        let total: u64 = runs[k].iter().map(&faults).sum();
        match (total, failures[k]) {
            (0, 0) => Cell::Text("none".into()),
            (0, f) => Cell::Text(format!("{f} run(s) failed")),
            (n, 0) => Cell::Text(format!("**{n}**")),
            (n, f) => Cell::Text(format!("**{n}**, {f} run(s) failed")),
        }
    })
}

/// Runs `scenario` `runs` times against each server, alternating, a fresh
/// server every time; failures are printed and counted.
pub fn alternate<T>(
    label: &str,
    runs: usize,
    mut scenario: impl FnMut(Kind) -> Result<T, String>,
    describe: impl Fn(&T) -> String,
) -> (Runs<T>, [usize; 2]) {
    let mut results: Runs<T> = [Vec::new(), Vec::new()];
    let mut failures = [0; 2];
    for run in 1..=runs {
        for (k, kind) in Kind::BOTH.into_iter().enumerate() {
            match scenario(kind) {
                Ok(result) => {
                    eprintln!(
                        "  {label}, {} run {run}: {}",
                        kind.name(),
                        describe(&result)
                    );
                    results[k].push(result);
                }
                Err(e) => {
                    eprintln!("  !! {label}, {} run {run} FAILED: {e}", kind.name());
                    failures[k] += 1;
                }
            }
        }
    }
    (results, failures)
}

/// Notes "2 run(s) FAILED" for each server with failed runs.
pub fn note_failures(label: &str, failures: &[usize; 2], notes: &mut Vec<String>) {
    for (kind, &failed) in Kind::BOTH.iter().zip(failures) {
        if failed > 0 {
            notes.push(format!(
                "{label}, {}: {failed} run(s) FAILED (the reasons are above, on stderr)",
                kind.name()
            ));
        }
    }
}
