//! Side-by-side benchmark of dopy against the wire itself (a hand-rolled framed echo) and tarpc:
//! one process, one 2-worker tokio runtime, loopback TCP, one table with dopy's ratios.
//!
//! ```sh
//! cargo run --release -p dopy-bench              # the full run (about a minute)
//! cargo run --release -p dopy-bench -- --quick   # every workload, briefly
//! cargo run --release -p dopy-bench -- --only seq,inflight --impl raw,typed --scale 5
//! cargo run --release -p dopy-bench -- --runs 5 --rounds 8  # medians of 5 runs, 8 turns each
//! ```
//!
//! See `docs/PERFORMANCE.md` for the workloads, the figures measured and where the time goes.

pub mod client;
pub mod data;
pub mod memory;
pub mod raw;
pub mod table;
pub mod with_dopy;
pub mod with_tarpc;
pub mod workload;

use std::net::SocketAddr;

use dopy::Node;

use crate::client::{Dynamic, Typed};
use crate::data::Bulk;
use crate::raw::RawClient;
use crate::table::{Column, Table, Unit};
use crate::with_dopy::BenchObjectProxy;
use crate::with_tarpc::BenchClient;
use crate::workload::{Done, Latency};

/// The workloads, by the names `--only` takes.
const WORKLOADS: [&str; 8] = ["seq", "inflight", "echo-vec", "echo-bytes", "fanin", "report", "idle", "export"];

/// Connections of the fan-in workload.
const FAN_IN: usize = 32;

/// Calls in flight in the pipelined workload.
const DEPTH: usize = 64;

/// Command-line options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Run every workload briefly.
    quick: bool,
    /// Multiplies every iteration count.
    scale: f64,
    /// The workloads to run.
    only: Vec<String>,
    /// The contenders to run.
    columns: Vec<Column>,
    /// How many times the timed workloads run; each figure is the median of the runs.
    runs: usize,
    /// How many rounds a run of a workload is split into, the contenders taking turns.
    rounds: usize,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut opts =
            Options { quick: false, scale: 1.0, only: Vec::new(), columns: Column::ALL.to_vec(), runs: 1, rounds: 4 };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--scale" => opts.scale = value("--scale")?.parse().map_err(|e| format!("--scale: {e}"))?,
                "--only" => {
                    for w in value("--only")?.split(',') {
                        if !WORKLOADS.contains(&w) {
                            return Err(format!("unknown workload `{w}`; one of {}", WORKLOADS.join(", ")));
                        }
                        opts.only.push(w.to_owned());
                    }
                }
                "--runs" => {
                    opts.runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?;
                    if opts.runs == 0 {
                        return Err("--runs: at least 1".into());
                    }
                }
                "--rounds" => {
                    opts.rounds = value("--rounds")?.parse().map_err(|e| format!("--rounds: {e}"))?;
                    if opts.rounds == 0 {
                        return Err("--rounds: at least 1".into());
                    }
                }
                "--impl" => {
                    opts.columns = value("--impl")?.split(',').map(Column::parse).collect::<Result<_, _>>()?;
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(opts)
    }

    fn wants(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| w == workload)
    }

    fn runs(&self, column: Column) -> bool {
        self.columns.contains(&column)
    }

    /// An iteration count: `full` normally, `quick` in quick mode, times `--scale`.
    fn n(&self, full: usize, quick: usize) -> usize {
        let base = if self.quick { quick } else { full };
        ((base as f64 * self.scale).round() as usize).max(1)
    }

    /// The iteration count of one round (see [`rounds!`]): [`n`](Options::n) split in
    /// `--rounds` parts.
    fn per_round(&self, full: usize, quick: usize) -> usize {
        self.n(full, quick).div_ceil(self.rounds)
    }
}

const USAGE: &str =
    "usage: dopy-bench [--quick] [--scale F] [--runs N] [--rounds N] [--only WORKLOAD,..] [--impl raw,tarpc,typed,dynamic]";

fn main() {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("dopy-bench: {e}");
            }
            eprintln!("{USAGE}\nworkloads: {}", WORKLOADS.join(", "));
            std::process::exit(2);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    let load_before = load_average();
    // The driver runs on a worker too: everything shares the runtime's two threads.
    let (runs, rounds) = (opts.runs, opts.rounds);
    let table = runtime.block_on(async { tokio::spawn(run(opts)).await.expect("the benchmark") });
    println!("{table}");
    println!("timed figures: each run in {rounds} rounds, the contenders taking turns in each");
    if runs > 1 {
        println!("timed figures: the median of {runs} runs (memory: one measurement)");
    }
    println!(
        "machine: {} cores; load average {} before, {} after",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        load_average()
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The contenders' clients: one per fan-in connection (the first also runs the one-connection
/// workloads).
struct Clients {
    raw: Vec<RawClient>,
    tarpc: Vec<BenchClient>,
    typed: Vec<Typed>,
    dynamic: Vec<Dynamic>,
}

/// Runs `$body` with `$c` bound to each contender's clients, `--rounds` times, the contenders
/// taking turns: round `r` starts with contender `r` (mod 4), so that none always runs right
/// after the same other one, and a change in the machine's load during a run (it is shared)
/// reaches every contender alike. Yields, per contender, what each of its rounds returned.
macro_rules! rounds {
    ($opts:expr, $clients:expr, |$c:ident| $body:expr) => {{
        let mut cells: [Vec<_>; 4] = Default::default();
        for round in 0..$opts.rounds {
            for turn in 0..4 {
                match (round + turn) % 4 {
                    0 if $opts.runs(Column::Raw) => {
                        let $c = &$clients.raw[..];
                        cells[0].push($body);
                    }
                    1 if $opts.runs(Column::Tarpc) => {
                        let $c = &$clients.tarpc[..];
                        cells[1].push($body);
                    }
                    2 if $opts.runs(Column::Typed) => {
                        let $c = &$clients.typed[..];
                        cells[2].push($body);
                    }
                    3 if $opts.runs(Column::Dynamic) => {
                        let $c = &$clients.dynamic[..];
                        cells[3].push($body);
                    }
                    _ => {}
                }
            }
        }
        cells
    }};
}

async fn connect_all(opts: &Options, raw: SocketAddr, tarpc: SocketAddr, dopy: &str) -> Clients {
    let n = |c: Column| if opts.runs(c) { FAN_IN } else { 0 };
    let mut clients = Clients { raw: Vec::new(), tarpc: Vec::new(), typed: Vec::new(), dynamic: Vec::new() };
    for _ in 0..n(Column::Raw) {
        clients.raw.push(RawClient::connect(raw).await);
    }
    for _ in 0..n(Column::Tarpc) {
        clients.tarpc.push(with_tarpc::connect(tarpc).await);
    }
    // One node per connection: a node shares one connection per endpoint among its proxies.
    for _ in 0..n(Column::Typed) {
        let proxy: BenchObjectProxy = Node::new().proxy(dopy).await.expect("a dopy proxy");
        clients.typed.push(Typed(proxy));
    }
    for _ in 0..n(Column::Dynamic) {
        clients.dynamic.push(Dynamic(Node::new().object(dopy).await.expect("a dopy object")));
    }
    clients
}

async fn run(opts: Options) -> Table {
    let raw_addr = raw::serve().await;
    let tarpc_addr = with_tarpc::serve().await;
    let (_node, dopy_addr) = with_dopy::serve().await;
    let dopy_socket: SocketAddr = dopy_addr
        .trim_start_matches("tcp://")
        .trim_end_matches(&format!("/{}", with_dopy::NAME))
        .parse()
        .expect("the dopy server's socket address");
    let mut table = Table::new(&opts.columns);

    // Memory first, on a fresh heap; everything measured stays alive until all is measured.
    let mut kept = Vec::new();
    if opts.wants("idle") {
        let n = opts.n(1000, 50);
        let mut cells = [None; 4];
        for (i, column, addr, hello) in [
            (0, Column::Raw, raw_addr, false),
            (1, Column::Tarpc, tarpc_addr, false),
            (2, Column::Typed, dopy_socket, true),
        ] {
            if opts.runs(column) {
                let (per, conns) = memory::per_item(n, move || memory::open_idle(addr, n, hello)).await;
                cells[i] = per.map(|b| b / 1024.0);
                kept.push(conns);
            }
        }
        table.row("idle connection, server (KiB/conn)", Unit::Kib, cells);
    }
    if opts.wants("export") && opts.runs(Column::Typed) {
        let n = opts.n(100_000, 1000);
        let (per, conn) = memory::per_item(n, move || memory::export_objects(dopy_socket, with_dopy::NAME, n)).await;
        kept.push(vec![conn]);
        table.row("exported object (B/object)", Unit::Bytes, [None, None, per, None]);
    }
    drop(kept);
    // Let the servers finish closing what the memory workloads opened before timing anything.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let clients = connect_all(&opts, raw_addr, tarpc_addr, &dopy_addr).await;
    let mut timed = Timed::default();
    for _ in 0..opts.runs {
        time_workloads(&opts, &clients, &mut timed).await;
    }
    timed.into_rows(&mut table);
    table
}

/// One figure per contender: raw, tarpc, dopy typed, dopy dynamic.
type Cells = [Option<f64>; 4];

/// The figures of the timed workloads, by row, over the runs.
#[derive(Default)]
struct Timed {
    rows: Vec<(&'static str, Unit, Vec<Cells>)>,
}

impl Timed {
    /// Adds one run's figures of a row.
    fn add(&mut self, label: &'static str, unit: Unit, cells: Cells) {
        match self.rows.iter_mut().find(|(l, ..)| *l == label) {
            Some((.., runs)) => runs.push(cells),
            None => self.rows.push((label, unit, vec![cells])),
        }
    }

    /// Adds every row to `table`, each figure the median of its runs.
    fn into_rows(self, table: &mut Table) {
        for (label, unit, runs) in self.rows {
            let cells: Cells = std::array::from_fn(|i| {
                let mut figures: Vec<f64> = runs.iter().filter_map(|r| r[i]).collect();
                figures.sort_by(f64::total_cmp);
                figures.get(figures.len() / 2).copied()
            });
            table.row(label, unit, cells);
        }
    }
}

/// One run of every timed workload.
async fn time_workloads(opts: &Options, clients: &Clients, table: &mut Timed) {
    let micros = |l: Option<Latency>, p99: bool| l.map(|l| if p99 { l.p99 } else { l.p50 }.as_secs_f64() * 1e6);
    if opts.wants("seq") {
        let n = opts.per_round(20_000, 300);
        let cells = rounds!(opts, clients, |c| workload::sequential(&c[0], n).await);
        let latency = cells.map(|rounds| Latency::of(rounds.concat()));
        table.add("add, sequential p50 (us)", Unit::Micros, latency.map(|l| micros(l, false)));
        table.add("add, sequential p99 (us)", Unit::Micros, latency.map(|l| micros(l, true)));
    }
    if opts.wants("inflight") {
        let n = opts.per_round(200_000, 2000);
        let cells = rounds!(opts, clients, |c| workload::in_flight(&c[0], n, DEPTH).await);
        table.add("add, 64 in flight on 1 conn (calls/s)", Unit::Rate, cells.map(|r| Done::rate(&r)));
    }
    for (name, bulk, label, full) in [
        ("echo-vec", Bulk::Vec, "echo 1 MiB, Vec<u8> (MiB/s)", 100),
        ("echo-bytes", Bulk::Bytes, "echo 1 MiB, byte type (MiB/s)", 400),
    ] {
        if opts.wants(name) {
            let n = opts.per_round(full, 3);
            let budget = workload::ECHO_BUDGET / opts.rounds as u32;
            let cells = rounds!(opts, clients, |c| workload::echo(&c[0], bulk, n, budget).await);
            table.add(label, Unit::Rate, cells.map(|r| Done::rate(&r)));
        }
    }
    if opts.wants("fanin") {
        let n = opts.per_round(3000, 20);
        let cells = rounds!(opts, clients, |c| workload::fan_in(c, n).await);
        table.add("add, 32 conns x sequential (calls/s)", Unit::Rate, cells.map(|r| Done::rate(&r)));
    }
    if opts.wants("report") {
        let n = opts.per_round(5000, 200);
        let cells = rounds!(opts, clients, |c| workload::report(&c[0], n).await);
        let latency = cells.map(|rounds| Latency::of(rounds.concat()));
        table.add("10 KiB struct result, p50 (us)", Unit::Micros, latency.map(|l| micros(l, false)));
    }
}
