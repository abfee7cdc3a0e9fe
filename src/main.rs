//! The `backprop` binary: parses arguments and hands them to the library.

use clap::Parser;

// Large buffers on cache lines: whole-vector loads of them are then single
// (see the type).
#[global_allocator]
static ALLOC: backprop::tensor::CacheAligned = backprop::tensor::CacheAligned;

fn main() {
    backprop::train::flush_denormals();
    // Under `mpirun`, the job first: rank 0 alone speaks, and an error on any
    // rank ends them all.
    let _job = backprop::dist::launch().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    let world = backprop::dist::world();
    let cli = match backprop::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if world.rank() == 0 => e.exit(),
        // The same flags on every rank: rank 0 says what is wrong with them.
        Err(e) => std::process::exit(e.exit_code()),
    };
    if let Err(e) = backprop::cli::run(cli) {
        if world.size() > 1 {
            // The loss is the allreduced one: every rank sees it diverge at
            // the same step.
            let shared = e.chain().any(|c| c.is::<backprop::train::Diverged>());
            backprop::dist::fail(&*world, &format!("{e:#}"), shared);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
