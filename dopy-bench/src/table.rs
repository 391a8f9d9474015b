//! The result table: one row per workload, one column per contender, then dopy's ratios.

use std::fmt;

/// A contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// The hand-rolled framed echo: the limit.
    Raw,
    /// tarpc with bincode.
    Tarpc,
    /// dopy's typed proxy.
    Typed,
    /// dopy's dynamic calls (`DynObject::call` with `Value`s).
    Dynamic,
}

impl Column {
    /// Every contender, in table order.
    pub const ALL: [Column; 4] = [Column::Raw, Column::Tarpc, Column::Typed, Column::Dynamic];

    /// Reads a contender's name (`raw`, `tarpc`, `typed`, `dynamic`).
    ///
    /// # Errors
    ///
    /// For any other name.
    pub fn parse(name: &str) -> Result<Column, String> {
        match name {
            "raw" => Ok(Column::Raw),
            "tarpc" => Ok(Column::Tarpc),
            "typed" => Ok(Column::Typed),
            "dynamic" => Ok(Column::Dynamic),
            other => Err(format!("unknown contender `{other}`; one of raw, tarpc, typed, dynamic")),
        }
    }
}

/// How a row's figures read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds (lower is better).
    Micros,
    /// Per second (higher is better).
    Rate,
    /// KiB (lower is better).
    Kib,
    /// Bytes (lower is better).
    Bytes,
}

/// One workload's figures: raw, tarpc, dopy typed, dopy dynamic.
#[derive(Clone, Debug)]
struct Row {
    label: &'static str,
    unit: Unit,
    cells: [Option<f64>; 4],
}

/// The table the benchmark prints.
#[derive(Clone, Debug)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Row>,
}

impl Table {
    /// An empty table of the contenders that run.
    pub fn new(columns: &[Column]) -> Table {
        Table { columns: columns.to_vec(), rows: Vec::new() }
    }

    /// Adds a row: the figures of raw, tarpc, dopy typed and dopy dynamic.
    pub fn row(&mut self, label: &'static str, unit: Unit, cells: [Option<f64>; 4]) {
        self.rows.push(Row { label, unit, cells });
    }
}

fn figure(unit: Unit, v: Option<f64>) -> String {
    let Some(v) = v else { return "-".into() };
    match unit {
        Unit::Micros => format!("{v:.1}"),
        Unit::Kib => format!("{v:.2}"),
        Unit::Rate | Unit::Bytes => {
            let digits = format!("{:.0}", v.max(0.0));
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = ["raw", "tarpc", "dopy typed", "dopy dyn", "typed/raw", "typed/tarpc", "dyn/raw", "dyn/typed"];
        write!(f, "{:<38}", "workload")?;
        for h in head {
            write!(f, " {h:>12}")?;
        }
        writeln!(f)?;
        for row in &self.rows {
            let [raw, tarpc, typed, dynamic] = row.cells;
            write!(f, "{:<38}", row.label)?;
            for v in row.cells {
                write!(f, " {:>12}", figure(row.unit, v))?;
            }
            for r in [ratio(typed, raw), ratio(typed, tarpc), ratio(dynamic, raw), ratio(dynamic, typed)] {
                write!(f, " {r:>12}")?;
            }
            writeln!(f)?;
        }
        let names: Vec<&str> = self
            .columns
            .iter()
            .map(|c| match c {
                Column::Raw => "raw",
                Column::Tarpc => "tarpc",
                Column::Typed => "typed",
                Column::Dynamic => "dynamic",
            })
            .collect();
        writeln!(f, "contenders run: {}", names.join(", "))?;
        write!(
            f,
            "ratios divide the first figure by the second: above 1 is slower for times (us) and memory, \
             faster for rates (/s)"
        )
    }
}
