//! One module per verb; each has `Args` (clap) and `run(Args) -> Result<ExitCode>`.

pub mod dataset;
#[cfg(feature = "ml")]
pub mod evaluate;
pub mod extract;
#[cfg(feature = "ml")]
pub mod inspect;
pub mod inspect_capture;
#[cfg(feature = "ml")]
pub mod train;
