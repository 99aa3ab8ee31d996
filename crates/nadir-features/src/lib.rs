//! Feature extraction: the fourth stage of the nadir pipeline.
//!
//! Three families, as the model designs consume them: `cic` (CICFlowMeter-compatible
//! flow statistics), `packets` (per-packet header vectors in windows) and `bytes`
//! (the first N packets x M bytes of each flow).

pub mod bytes;
pub mod cic;
pub mod labels;
pub mod output;
pub mod packets;
pub mod roles;
