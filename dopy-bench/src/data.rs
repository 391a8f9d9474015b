//! The data the workloads move, shared by every implementation.

use serde::{Deserialize, Serialize};

/// Size of the bulk buffer echoed by the echo workloads: 1 MiB.
pub const BULK_LEN: usize = 1024 * 1024;

/// Size of the raw reply standing in for the 10 KiB struct.
pub const REPORT_LEN: usize = 10 * 1024;

/// Rows in a [`Report`]: 128 rows of about 80 bytes, about 10 KiB once encoded.
const REPORT_ROWS: u64 = 128;

/// One row of a [`Report`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// A row number.
    pub id: u64,
    /// A coordinate.
    pub x: f64,
    /// Another coordinate.
    pub y: f64,
    /// A 60-character label.
    pub name: String,
}

/// The result of the "10 KiB struct" workload: a struct of about 10 KiB once encoded (postcard:
/// 10.1 KiB, bincode: 11.8 KiB), with strings, floats and a vector of structs, so that the
/// serializer does real work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// A title.
    pub title: String,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Report {
    /// The report every server returns.
    pub fn sample() -> Report {
        let rows = (0..REPORT_ROWS)
            .map(|i| Row { id: i, x: i as f64 * 0.5, y: i as f64 * 1.5, name: format!("row-{i:056}") })
            .collect();
        Report { title: "quarterly figures".into(), rows }
    }
}

/// Which serde representation the echo workload uses for its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bulk {
    /// `Vec<u8>`: serde serializes it as a sequence, byte by byte.
    Vec,
    /// The byte type: `serde_bytes::ByteBuf` for tarpc, `dopy::Bytes` for dopy (one slice).
    Bytes,
}
