//! What the processes of one job (ranks, started by `mpirun`) say to each
//! other: the trainer shares every batch among the replicas of all ranks,
//! and the hyperparameter search shares its trials.
//!
//! Everything goes through [`Collective`]: rank, size, an allreduce of a flat
//! buffer of values, allgather, broadcast and gather of bytes, abort.
//! [`Local`] implements it between threads of one process (the tests, and a
//! process on its own: [`world`] outside `mpirun`); `mpi.rs` on MPI (feature
//! `mpi`).
//!
//! The allreduce adds in rank order, a chain: rank 0 adds its terms, passes
//! the sum to rank 1, which adds its own, and so on; the last rank's sum goes
//! to all. MPI's own `MPI_Allreduce` leaves the order and the grouping of
//! the additions to the library (they depend on the rank count, the message
//! size and the network), and floating-point addition is not associative, so
//! it would give other last bits than one process. In the chain each rank
//! adds its threads' gradients one by one to the sum it was handed: exactly
//! the additions one process with as many threads makes, in the same order,
//! so the weights are bit for bit the same. The price: K - 1 hops one after
//! the other instead of MPI's tree or ring (README "Many machines").
//!
//! ```
//! use backprop::dist::{self, Collective, Local};
//!
//! let ranks = Local::group(2);
//! std::thread::scope(|s| {
//!     for comm in &ranks {
//!         s.spawn(move || {
//!             let mut sum = [0f64; 2];
//!             let mine = [1.0, comm.rank() as f64];
//!             dist::allreduce(comm, &mut sum, |sum| {
//!                 sum.iter_mut().zip(mine).for_each(|(s, m)| *s += m)
//!             });
//!             assert_eq!(sum, [2.0, 1.0]);
//!         });
//!     }
//! });
//! ```

#[cfg(feature = "mpi")]
mod mpi;

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::tensor::Float;

/// The collective operations of a group of ranks. Every rank of the group
/// calls each operation, in the same order; a rank that does not blocks the
/// others until the job is aborted.
pub trait Collective: Send + Sync {
    /// This rank, from 0 to `size() - 1`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// A sum over the ranks in rank order (see the module documentation):
    /// rank 0 calls `fold` on `sum` as it passed it, every other rank on the
    /// sum of the ranks before it; `fold` adds the rank's terms. On return
    /// `sum` holds the last rank's sum on every rank. All ranks pass buffers
    /// of one length. [`allreduce`] is the same for values.
    fn allreduce_bytes(&self, sum: &mut [u8], fold: &mut dyn FnMut(&mut [u8]));
    /// Every rank's `mine` (all of one length) into `all` on every rank, in
    /// rank order; `all` is `size()` times as long as `mine`.
    fn allgather(&self, mine: &[u8], all: &mut [u8]);
    /// Replaces `bytes` on every rank by those of `root`.
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>);
    /// Every rank's `mine` (any lengths) on `root`, in rank order; `None` on
    /// the other ranks.
    fn gather(&self, root: usize, mine: &[u8]) -> Option<Vec<Vec<u8>>>;
    /// Ends every rank of the group at once (the job exits with code 1).
    fn abort(&self) -> !;
}

/// The ranks of a job as threads of one process, sharing memory.
pub struct Local {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    size: usize,
    round: Mutex<Round>,
    turn: Condvar,
}

/// One collective operation under way: what each rank put in, and a barrier.
struct Round {
    slots: Vec<Vec<u8>>,
    /// The allreduce's sum so far, and the rank whose turn it is to add.
    sum: Vec<u8>,
    turn: usize,
    arrived: usize,
    generation: u64,
    aborted: bool,
}

impl Local {
    /// `size` ranks that talk to each other; give each to its own thread.
    pub fn group(size: usize) -> Vec<Local> {
        assert!(size > 0, "a group has at least one rank");
        let shared = Arc::new(Shared {
            size,
            round: Mutex::new(Round {
                slots: vec![Vec::new(); size],
                sum: Vec::new(),
                turn: 0,
                arrived: 0,
                generation: 0,
                aborted: false,
            }),
            turn: Condvar::new(),
        });
        (0..size)
            .map(|rank| Local {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Round> {
        // A rank that panicked holding the lock aborted the group anyway.
        let round = self.shared.round.lock().unwrap_or_else(|e| e.into_inner());
        if round.aborted {
            panic!("rank {}: another rank aborted the group", self.rank);
        }
        round
    }

    /// Waits until `ready` holds, or the group is aborted.
    fn wait_for<'a>(
        &'a self,
        mut round: MutexGuard<'a, Round>,
        ready: impl Fn(&Round) -> bool,
    ) -> MutexGuard<'a, Round> {
        while !ready(&round) {
            round = self
                .shared
                .turn
                .wait(round)
                .unwrap_or_else(|e| e.into_inner());
            if round.aborted {
                panic!("rank {}: another rank aborted the group", self.rank);
            }
        }
        round
    }

    /// Waits until every rank has come this far.
    fn barrier(&self) {
        let mut round = self.lock();
        round.arrived += 1;
        if round.arrived == self.shared.size {
            round.arrived = 0;
            round.generation += 1;
            self.shared.turn.notify_all();
            return;
        }
        let generation = round.generation;
        drop(self.wait_for(round, |r| r.generation != generation));
    }

    /// Puts `mine` in this rank's slot, waits for all, reads with `read`,
    /// and waits again so that no slot is overwritten before all have read.
    fn exchange<R>(&self, mine: &[u8], read: impl FnOnce(&[Vec<u8>]) -> R) -> R {
        {
            let mut round = self.lock();
            round.slots[self.rank].clear();
            round.slots[self.rank].extend_from_slice(mine);
        }
        self.barrier();
        let result = read(&self.lock().slots);
        self.barrier();
        result
    }
}

impl Collective for Local {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn allreduce_bytes(&self, sum: &mut [u8], fold: &mut dyn FnMut(&mut [u8])) {
        let round = self.wait_for(self.lock(), |r| r.turn == self.rank);
        if self.rank > 0 {
            assert_eq!(
                round.sum.len(),
                sum.len(),
                "allreduce: ranks sent unequal lengths"
            );
            sum.copy_from_slice(&round.sum);
        }
        // The others wait for their turn anyway: no lock while adding.
        drop(round);
        fold(sum);
        let mut round = self.lock();
        round.sum.clear();
        round.sum.extend_from_slice(sum);
        round.turn = (self.rank + 1) % self.size();
        self.shared.turn.notify_all();
        drop(round);
        // Everyone reads the last rank's sum before the next allreduce starts.
        self.barrier();
        sum.copy_from_slice(&self.lock().sum);
        self.barrier();
    }

    fn allgather(&self, mine: &[u8], all: &mut [u8]) {
        assert_eq!(
            all.len(),
            mine.len() * self.size(),
            "allgather: {} bytes from each of {} ranks into {}",
            mine.len(),
            self.size(),
            all.len()
        );
        self.exchange(mine, |slots| {
            for (dst, slot) in all.chunks_exact_mut(mine.len().max(1)).zip(slots) {
                assert_eq!(
                    slot.len(),
                    mine.len(),
                    "allgather: ranks sent unequal lengths"
                );
                dst.copy_from_slice(slot);
            }
        });
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) {
        let mine = if self.rank == root { &bytes[..] } else { &[] };
        let root_bytes = self.exchange(mine, |slots| slots[root].clone());
        *bytes = root_bytes;
    }

    fn gather(&self, root: usize, mine: &[u8]) -> Option<Vec<Vec<u8>>> {
        let is_root = self.rank == root;
        self.exchange(mine, |slots| is_root.then(|| slots.to_vec()))
    }

    fn abort(&self) -> ! {
        let mut round = self.shared.round.lock().unwrap_or_else(|e| e.into_inner());
        round.aborted = true;
        self.shared.turn.notify_all();
        drop(round);
        panic!("rank {} aborted the group", self.rank);
    }
}

/// The job this process belongs to: set by [`launch`] under `mpirun`, a
/// group of one otherwise.
static WORLD: OnceLock<Arc<dyn Collective>> = OnceLock::new();

/// The ranks of this process's job ([`launch`]), or this process alone.
pub fn world() -> Arc<dyn Collective> {
    Arc::clone(WORLD.get_or_init(|| Arc::new(Local::group(1).pop().expect("a group of one"))))
}

/// The number of ranks an MPI launcher (Open MPI's `mpirun`, or MPICH's)
/// started this job with, if one did.
fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// The ranks the launcher put on this machine (1 outside `mpirun`), which
/// share its cores.
pub fn ranks_on_this_machine() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// A process's membership in its job, from [`launch`] to the end of `main`:
/// dropping it leaves the job (MPI_Finalize).
pub struct Launch {
    #[cfg(feature = "mpi")]
    _universe: Option<::mpi::environment::Universe>,
}

/// Joins the job `mpirun` started this process in, if it did, so that
/// [`world`] is that job; outside `mpirun` [`world`] is this process alone.
/// On ranks other than 0, standard output is silenced: rank 0 speaks for the job.
pub fn launch() -> Result<Launch, String> {
    let Some(size) = launched_size() else {
        return Ok(Launch {
            #[cfg(feature = "mpi")]
            _universe: None,
        });
    };
    #[cfg(feature = "mpi")]
    {
        let _ = size;
        let (universe, comm) = mpi::init()?;
        if comm.rank() != 0 {
            mpi::silence_stdout();
        }
        let comm: Arc<dyn Collective> = Arc::new(comm);
        WORLD
            .set(Arc::clone(&comm))
            .map_err(|_| "the job was joined twice".to_owned())?;
        // A panic on one rank (an internal error) ends the job, after its
        // message, rather than leaving the others in a collective.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            comm.abort();
        }));
        Ok(Launch {
            _universe: Some(universe),
        })
    }
    #[cfg(not(feature = "mpi"))]
    {
        if size > 1 {
            return Err(format!(
                "mpirun started {size} copies of a backprop built without MPI: each would train alone. \
                 Build it with `cargo build --release --features mpi`"
            ));
        }
        Ok(Launch {})
    }
}

/// How long a rank other than 0 waits before it reports its error: when all
/// ranks fail alike (a wrong flag, missing data), rank 0's line ends the job
/// first, and the job says it once. (Open MPI took more than a second to
/// end the other ranks of a job on a busy machine.)
const FAIL_GRACE: Duration = Duration::from_secs(3);

/// How long a rank other than 0 waits, silent, for rank 0 to end the job
/// after an error every rank meets at the same point (`shared`), before it
/// says it itself: long, because rank 0 is sure to meet it too.
const SHARED_FAIL_WAIT: Duration = Duration::from_secs(30);

/// Ends the job after an error on this rank: `message` as one line on
/// standard error (naming the rank, but for rank 0), then every rank stops.
/// `shared`: every rank meets this error at the same point, e.g. a diverged
/// loss, which is the allreduced one; rank 0's line is then the job's.
pub fn fail(comm: &dyn Collective, message: &str, shared: bool) -> ! {
    if comm.rank() != 0 {
        std::thread::sleep(if shared { SHARED_FAIL_WAIT } else { FAIL_GRACE });
        eprintln!("error: rank {} of {}: {message}", comm.rank(), comm.size());
    } else {
        eprintln!("error: {message}");
    }
    comm.abort()
}

/// [`Collective::allreduce_bytes`] for values: every rank's `fold` adds its
/// terms to the sum of the ranks before it, in rank order; on return `sum`
/// holds the total on every rank. The sum starts at -0.0, which added to any
/// `x` gives `x` exactly (signed zeros included), so a rank's first term
/// enters the sum as it is, as in one process.
pub fn allreduce<T: Float>(comm: &dyn Collective, sum: &mut [T], mut fold: impl FnMut(&mut [T])) {
    sum.fill(T::neg_zero());
    comm.allreduce_bytes(bytes_of_mut(sum), &mut |bytes| fold(values_of_mut(bytes)));
}

/// The bytes of `values` (f32 or f64 data, which has no padding).
pub(crate) fn bytes_of<T: Float>(values: &[T]) -> &[u8] {
    check_plain::<T>();
    // SAFETY: f32 and f64 (checked above) are plain data: every byte of a
    // slice of them is initialised, and u8 has no alignment.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

/// The bytes of `values`, to be overwritten.
pub(crate) fn bytes_of_mut<T: Float>(values: &mut [T]) -> &mut [u8] {
    check_plain::<T>();
    // SAFETY: as in `bytes_of`; moreover every bit pattern is an f32 or an f64.
    unsafe {
        std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), std::mem::size_of_val(values))
    }
}

/// The values in `bytes`, which [`bytes_of_mut`] made from a slice of them.
fn values_of_mut<T: Float>(bytes: &mut [u8]) -> &mut [T] {
    check_plain::<T>();
    let (head, values, tail) = unsafe {
        // SAFETY: every bit pattern is an f32 or an f64; the split below
        // checks the alignment.
        bytes.align_to_mut::<T>()
    };
    assert!(
        head.is_empty() && tail.is_empty(),
        "allreduce: the bytes are not whole aligned {} values",
        T::NAME
    );
    values
}

fn check_plain<T: Float>() {
    assert!(
        matches!(T::NAME, "f32" | "f64"),
        "only f32 and f64 values travel between ranks, not {}",
        T::NAME
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `f` on every rank of a group of `size`, each on its own thread;
    /// returns what each rank returned, in rank order.
    pub(crate) fn on_ranks<R: Send>(size: usize, f: impl Fn(&Local) -> R + Sync) -> Vec<R> {
        let ranks = Local::group(size);
        std::thread::scope(|s| {
            let handles: Vec<_> = ranks.iter().map(|c| s.spawn(|| f(c))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn allreduce_adds_in_rank_order() {
        // Each rank adds 1e16 then 1.0: in rank order the 1.0s are lost to
        // rounding one by one; any other grouping keeps some of them.
        let got = on_ranks(3, |c| {
            let mut sums = Vec::new();
            for _ in 0..3 {
                let mut sum = [0f64; 2];
                allreduce(c, &mut sum, |s| {
                    s[0] += 1e16;
                    s[0] += 1.0;
                    s[1] += c.rank() as f64;
                });
                sums.push(sum);
            }
            sums
        });
        let mut want = -0.0f64;
        for _ in 0..3 {
            want += 1e16;
            want += 1.0;
        }
        for sums in got {
            for sum in sums {
                assert_eq!(sum, [want, 3.0]);
            }
        }
    }

    #[test]
    fn allreduce_starts_from_a_zero_that_keeps_signs() {
        let got = on_ranks(2, |c| {
            let mut sum = [0f32];
            allreduce(c, &mut sum, |s| {
                if c.rank() == 0 {
                    s[0] += -0.0;
                }
            });
            sum[0].to_bits()
        });
        assert_eq!(got, [(-0.0f32).to_bits(); 2]);
    }

    #[test]
    fn allgather_puts_every_rank_in_rank_order() {
        let got = on_ranks(3, |c| {
            let mine = [c.rank() as u8 * 10, c.rank() as u8 * 10 + 1];
            let mut all = [0u8; 6];
            for _ in 0..3 {
                c.allgather(&mine, &mut all);
            }
            all
        });
        for all in got {
            assert_eq!(all, [0, 1, 10, 11, 20, 21]);
        }
    }

    #[test]
    fn broadcast_and_gather_move_bytes_of_any_length() {
        let got = on_ranks(3, |c| {
            let mut bytes = if c.rank() == 1 {
                b"from one".to_vec()
            } else {
                vec![9; 40]
            };
            c.broadcast(1, &mut bytes);
            let gathered = c.gather(2, &vec![c.rank() as u8; c.rank()]);
            (bytes, gathered)
        });
        for (rank, (bytes, gathered)) in got.into_iter().enumerate() {
            assert_eq!(bytes, b"from one");
            if rank == 2 {
                assert_eq!(gathered.unwrap(), vec![vec![], vec![1], vec![2, 2]]);
            } else {
                assert!(gathered.is_none());
            }
        }
    }

    #[test]
    fn an_abort_ends_the_ranks_waiting_for_it() {
        let ranks = Local::group(2);
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            if c.rank() == 1 {
                                c.abort();
                            }
                            let mut all = [0u8; 2];
                            c.allgather(&[0], &mut all);
                        }))
                        .is_err()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results, [true, true], "both ranks stop instead of waiting");
    }

    #[test]
    fn values_travel_as_their_bytes() {
        let v = [1.5f32, -0.0, f32::INFINITY];
        let mut w = [0f32; 3];
        bytes_of_mut(&mut w).copy_from_slice(bytes_of(&v));
        assert_eq!(v.map(f32::to_bits), w.map(f32::to_bits));
    }
}
