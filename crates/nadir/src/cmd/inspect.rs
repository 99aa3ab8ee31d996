//! `nadir inspect`: what a bundle holds.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use nadir_detect::Bundle;

/// Show what a model bundle (.nadir) holds, after verifying it.
///
/// The bundle's checksum, format version and internal consistency are checked
/// first; a truncated, altered or foreign file is refused with the reason.
/// Then it prints the model family and size, input shape, the feature schema,
/// the fitted preprocessing, the labels, the decision threshold and how it was
/// chosen, the training data fingerprint, the training history and the metrics
/// recorded at training time.
///
/// Examples:
///
///   nadir inspect nsl.nadir
///
///   nadir inspect nsl.nadir --json | jq .thresholds
///
///   nadir inspect nsl.nadir --columns      # every feature column, in order
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The bundle file.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// Print the whole manifest as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    /// Also list every feature column in order.
    #[arg(long)]
    columns: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let bundle = Bundle::load(&args.bundle)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&bundle.manifest)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{}: verified (sha256 over header, manifest and weights)",
        args.bundle.display()
    );
    write!(std::io::stdout(), "{bundle}")?;
    if args.columns {
        outln!("\nfeature columns ({}):", bundle.manifest.schema.len());
        for (i, name) in bundle.manifest.schema.columns.iter().enumerate() {
            outln!("{i:>5}  {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
