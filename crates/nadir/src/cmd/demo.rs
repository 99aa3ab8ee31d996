//! `nadir demo`: placeholder until the shipped bundle exists.
use std::process::ExitCode;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
