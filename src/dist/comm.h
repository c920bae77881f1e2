// A thin communicator over MPI for data-parallel training (namespace polymoe::dist): rank, size,
// and the few collectives the trainer needs, each defined so that its result does not depend on
// timing or on how work is split, only on the values:
//   - tree_sum (float gradients): the sum over ranks along a fixed binary tree (at level j, rank
//     i with i mod 2^(j+1) == 0 adds the partial of rank i + 2^j), then a broadcast from rank 0,
//     so every rank holds the same bits. TreeAccumulator runs the same tree over a rank's local
//     micro-batches; when each rank's micro-batch count is a power of two, ranks x micro-batches
//     gives the same association, and hence the same bits, as one rank with all micro-batches.
//   - allgather (small double vectors): every rank's vector in rank order, for sums that the
//     caller runs in one fixed order.
// Without MPI (not compiled in, or the process was not started by mpirun) the communicator is a
// single rank and the collectives are identities. MPI is initialised only when the launcher's
// environment says so (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK), so a plain `polymoe train`
// never pays for, or depends on, an MPI runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace polymoe::dist {

class Comm {
public:
    // The process's communicator: MPI_COMM_WORLD after init(), else a single rank.
    static Comm& world();
    // Initialises MPI when launched by an MPI launcher (see above); idempotent. Returns the
    // communicator. MPI_Finalize runs at exit.
    static Comm& init();
    int rank() const { return rank_; }
    int size() const { return size_; }
    bool mpi() const { return mpi_; }
    // Element-wise sum over ranks of x[0..n), the same bits on every rank (tree, see above).
    void tree_sum(float* x, size_t n) const;
    // Every rank's `local` (all of the same length) concatenated in rank order.
    std::vector<double> allgather(const std::vector<double>& local) const;
    // Every rank's string in rank order (checkpoint state of the data sources).
    std::vector<std::string> allgather(const std::string& local) const;
    // Fails on every rank (polymoe::Error naming `what`) unless all ranks pass the same value.
    void check_same(const std::string& what, int64_t value) const;
    void barrier() const;
    // Ends every rank at once (after an error on one rank the others would wait forever).
    [[noreturn]] void abort(int code) const;

private:
    int rank_ = 0, size_ = 1;
    bool mpi_ = false;
    mutable std::vector<float> recv_;  // tree_sum's receive buffer (one chunk), reused
};

// Sums vectors pushed one by one (a rank's micro-batch gradients) along the binary tree of
// Comm::tree_sum over their index: like a binary counter, slot j holds the sum of the last 2^j
// pushed; at the end the occupied slots are added from the lowest up. Memory: one vector per
// slot, log2(pushed) + 1 of them.
class TreeAccumulator {
public:
    explicit TreeAccumulator(size_t n) : n_(n) {}
    void push(const float* x);
    // The sum so far into out[0..n) (zeros when nothing was pushed); resets the accumulator.
    void take(float* out);

private:
    size_t n_;
    std::vector<std::vector<float>> slot_;  // slot_[j]: empty or the sum of 2^j vectors
    std::vector<std::vector<float>> spare_;
};

}  // namespace polymoe::dist
