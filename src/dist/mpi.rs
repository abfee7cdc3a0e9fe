//! [`Collective`] on MPI: rsmpi's bindings to the system's MPI library (Open
//! MPI from Debian's `libopenmpi-dev`), for a job started by `mpirun`.
//!
//! MPI runs with `MPI_THREAD_SERIALIZED`: the trainer calls it from a worker
//! thread during an epoch and from the main thread between epochs, never
//! from two at once (a mutex makes sure).

use std::sync::Mutex;

use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::{Count, Threading};

use super::Collective;

pub(super) struct Mpi {
    world: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
}

// SAFETY: MPI was initialised for calls from any thread, one at a time
// (`init` checks the level it got); every call goes through the mutex.
unsafe impl Send for Mpi {}
unsafe impl Sync for Mpi {}

/// Initialises MPI; the universe finalises it when dropped.
pub(super) fn init() -> Result<(Universe, Mpi), String> {
    let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| "MPI was initialised twice".to_owned())?;
    if !matches!(level, Threading::Serialized | Threading::Multiple) {
        return Err(format!(
            "the MPI library offers threads at level {level:?}; backprop needs Serialized or Multiple"
        ));
    }
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    Ok((
        universe,
        Mpi {
            world: Mutex::new(world),
            rank,
            size,
        },
    ))
}

/// Sends this process's standard output to /dev/null: under `mpirun` rank 0
/// alone prints the run's lines (errors go to standard error).
pub(super) fn silence_stdout() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: both are open descriptors; dup2 only redirects descriptor 1.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}

/// A length as MPI counts it.
fn count(len: usize, what: &str) -> Count {
    Count::try_from(len).unwrap_or_else(|_| {
        panic!("{what}: {len} bytes are more than MPI sends in one message (2 GiB)")
    })
}

impl Mpi {
    fn world(&self) -> std::sync::MutexGuard<'_, SimpleCommunicator> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn allreduce_bytes(&self, sum: &mut [u8], fold: &mut dyn FnMut(&mut [u8])) {
        count(sum.len(), "allreduce");
        if self.rank > 0 {
            // A sum of another length is an MPI error: the job ends.
            self.world()
                .process_at_rank(self.rank as i32 - 1)
                .receive_into(sum);
        }
        fold(sum);
        let last = self.size as i32 - 1;
        if (self.rank as i32) < last {
            self.world()
                .process_at_rank(self.rank as i32 + 1)
                .send(&sum[..]);
        }
        self.world().process_at_rank(last).broadcast_into(sum);
    }

    fn allgather(&self, mine: &[u8], all: &mut [u8]) {
        assert_eq!(
            all.len(),
            mine.len() * self.size,
            "allgather: buffer lengths"
        );
        count(all.len(), "allgather");
        self.world().all_gather_into(mine, all);
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) {
        let world = self.world();
        let root = world.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        count(bytes.len(), "broadcast");
        root.broadcast_into(&mut bytes[..]);
    }

    fn gather(&self, root: usize, mine: &[u8]) -> Option<Vec<Vec<u8>>> {
        let world = self.world();
        let root_process = world.process_at_rank(root as i32);
        let len = count(mine.len(), "gather");
        if self.rank != root {
            root_process.gather_into(&len);
            root_process.gather_varcount_into(mine);
            return None;
        }
        let mut counts = vec![0 as Count; self.size];
        root_process.gather_into_root(&len, &mut counts[..]);
        let displs: Vec<Count> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        count(total, "gather");
        let mut all = vec![0u8; total];
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            root_process.gather_varcount_into_root(mine, &mut partition);
        }
        Some(
            counts
                .iter()
                .zip(&displs)
                .map(|(&c, &d)| all[d as usize..(d + c) as usize].to_vec())
                .collect(),
        )
    }

    fn abort(&self) -> ! {
        // Past the mutex: the thread that holds it may be the one waiting
        // forever in a collective, and an abort ends every call anyway.
        // SAFETY: MPI is initialised; MPI_Abort does not return.
        unsafe {
            mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 1);
        }
        std::process::abort()
    }
}
