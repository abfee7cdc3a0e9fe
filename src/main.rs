//! The `backprop` binary: parses arguments and hands them to the library.

use clap::Parser;

fn main() {
    backprop::train::flush_denormals();
    let cli = backprop::cli::Cli::parse();
    if let Err(e) = backprop::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
