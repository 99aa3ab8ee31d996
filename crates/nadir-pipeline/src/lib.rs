//! The pipeline stage of nadir: drivers from a packet source to feature rows.
//!
//! A capture is read packet by packet ([`FileSource`](nadir_capture::FileSource),
//! stdin included), decoded into `PacketRecord`s, fed to a (sharded) flow table,
//! and what ends (flows, or workers' batches) goes to a caller's sink. The same
//! drivers ([`for_each_packet`], [`run_flow_family`]) serve every verb that starts
//! from packets: `extract` writes feature tables with them ([`extract::extract`]),
//! `detect` and `watch` score rows instead. Each run fills a [`RunSummary`] of
//! counters (packets, skips by reason, flows, rows, per-file errors).

pub mod drive;
pub mod error;
pub mod extract;
pub mod progress;
pub mod summary;

pub use drive::{
    each_flow, for_each_packet, for_each_packet_from, label_target, run_flow_family,
    run_flow_family_from, EndedCopies, Input, Seen, PROGRESS_EVERY,
};
pub use error::PipelineError;
pub use extract::{extract, ExtractSpec, Family};
pub use progress::Progress;
pub use summary::RunSummary;
