//! `nadir`: one binary, one verb per pipeline stage.

mod cmd;

use clap::{Parser, Subcommand};

/// Network Anomaly Detection In Rust.
///
/// nadir turns packets into flows, flows into features, features into scores and
/// scores into alerts. Start with `nadir inspect-capture FILE` to see what a
/// capture holds.
#[derive(Parser)]
#[command(name = "nadir", version, about, long_about, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

/// Each verb's about and `--help` (with examples) come from its `Args` doc comment, so the
/// variants carry none: a variant's doc would replace them.
#[derive(Subcommand)]
enum Command {
    InspectCapture(cmd::inspect_capture::Args),
    Extract(cmd::extract::Args),
    /// Look at datasets: rows, columns, labels, missing and infinite values.
    #[command(subcommand)]
    Dataset(cmd::dataset::Command),
    #[cfg(feature = "ml")]
    Train(Box<cmd::train::Args>),
    #[cfg(feature = "ml")]
    Evaluate(cmd::evaluate::Args),
    #[cfg(feature = "ml")]
    Adapt(Box<cmd::adapt::Args>),
    #[cfg(feature = "ml")]
    Inspect(cmd::inspect::Args),
    #[cfg(feature = "ml")]
    Detect(Box<cmd::detect::Args>),
    #[cfg(feature = "ml")]
    Explain(Box<cmd::explain::Args>),
    #[cfg(feature = "ml")]
    Demo(cmd::demo::Args),
    #[cfg(feature = "live")]
    Watch(Box<cmd::watch::Args>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    #[cfg(feature = "ml")]
    prepare_for_models(&cli.command);
    let result = match cli.command {
        Command::InspectCapture(args) => cmd::inspect_capture::run(args),
        Command::Extract(args) => cmd::extract::run(args),
        Command::Dataset(command) => cmd::dataset::run(command),
        #[cfg(feature = "ml")]
        Command::Train(args) => cmd::train::run(*args),
        #[cfg(feature = "ml")]
        Command::Evaluate(args) => cmd::evaluate::run(args),
        #[cfg(feature = "ml")]
        Command::Adapt(args) => cmd::adapt::run(*args),
        #[cfg(feature = "ml")]
        Command::Inspect(args) => cmd::inspect::run(args),
        #[cfg(feature = "ml")]
        Command::Detect(args) => cmd::detect::run(*args),
        #[cfg(feature = "ml")]
        Command::Explain(args) => cmd::explain::run(*args),
        #[cfg(feature = "ml")]
        Command::Demo(args) => cmd::demo::run(args),
        #[cfg(feature = "live")]
        Command::Watch(args) => cmd::watch::run(*args),
    };
    match result {
        Ok(code) => code,
        // `nadir ... | head`: the reader went away; stop quietly, as a Unix tool does.
        Err(err) if cmd::is_closed_output(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_message(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Commands that run models keep freed tensor memory (process-wide), and those that run them
/// on this thread make it one of the compute threads (`watch` scores on a thread of its own,
/// which does the same there).
#[cfg(feature = "ml")]
fn prepare_for_models(command: &Command) {
    let models_on_this_thread = match command {
        Command::Train(_)
        | Command::Evaluate(_)
        | Command::Adapt(_)
        | Command::Detect(_)
        | Command::Explain(_)
        | Command::Demo(_) => true,
        #[cfg(feature = "live")]
        Command::Watch(_) => false,
        _ => return,
    };
    nadir_model::keep_freed_tensor_memory();
    if models_on_this_thread {
        nadir_model::compute_on_this_thread();
    }
}

/// The error and its causes, `: `-joined, without a cause that an outer message already
/// quotes (many errors print their source in their own text, and the chain repeats it),
/// and without a cause's leading name that the outer message ends with (`loading X: X: ...`).
fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        let text = match text.split_once(": ") {
            Some((name, rest)) if message.ends_with(name) => rest,
            _ => &text,
        };
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(text);
    }
    message
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a terminal: a log redirected to a file stays plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
