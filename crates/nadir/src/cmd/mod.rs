//! One module per verb; each has `Args` (clap) and `run(Args) -> Result<ExitCode>`.

pub mod dataset;
pub mod extract;
pub mod inspect_capture;
