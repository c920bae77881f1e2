// The MPI communicator and the tree sums (see comm.h). Built with POLYMOE_HAVE_MPI when CMake
// found MPI (option POLYMOE_MPI); without it every Comm is a single rank.
#include "dist/comm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

#ifdef POLYMOE_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (the C++ bindings are deprecated)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace polymoe::dist {

namespace {

bool launched_by_mpi() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
        if (std::getenv(v)) return true;
    return false;
}

void add(float* x, const float* y, size_t n) {
    for (size_t i = 0; i < n; ++i)
        x[i] += y[i];
}

#ifdef POLYMOE_HAVE_MPI
// Gradients move in chunks of this many elements (16 MiB): MPI counts are int, and a receiving
// rank needs a buffer of one chunk only, kept between calls. Allocating a fresh buffer the size
// of the gradient at every step cost 0.53 s of page faults for 132 MB on this VM, 40 % of a
// 2-rank `tiny` step.
constexpr size_t kChunk = size_t{1} << 22;

void finalize_at_exit() {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}
#endif

}  // namespace

Comm& Comm::world() {
    static Comm c;
    return c;
}

Comm& Comm::init() {
    Comm& c = world();
#ifdef POLYMOE_HAVE_MPI
    if (c.mpi_ || !launched_by_mpi()) return c;
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        fail("dist", "MPI_Init_thread: expected success under mpirun, found an error");
    std::atexit(finalize_at_exit);
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &c.size_);
    c.mpi_ = true;
#else
    if (launched_by_mpi() && std::getenv("OMPI_COMM_WORLD_SIZE") &&
        std::string(std::getenv("OMPI_COMM_WORLD_SIZE")) != "1")
        fail("dist",
             "launched by mpirun with {} ranks, but this polymoe was built without MPI "
             "(POLYMOE_MPI=OFF or MPI not found); install libopenmpi-dev and rebuild",
             std::getenv("OMPI_COMM_WORLD_SIZE"));
#endif
    return c;
}

void Comm::tree_sum(float* x, size_t n) const {
    if (size_ == 1) return;
#ifdef POLYMOE_HAVE_MPI
    std::vector<float>& buf = recv_;
    for (int step = 1; step < size_; step *= 2) {
        if (rank_ % (2 * step) == 0) {
            if (rank_ + step >= size_) continue;
            if (buf.size() < std::min(n, kChunk)) buf.resize(std::min(n, kChunk));
            for (size_t o = 0; o < n; o += kChunk) {
                const size_t m = std::min(kChunk, n - o);
                MPI_Recv(buf.data(), static_cast<int>(m), MPI_FLOAT, rank_ + step, step,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                add(x + o, buf.data(), m);
            }
        } else if (rank_ % (2 * step) == step) {
            for (size_t o = 0; o < n; o += kChunk)
                MPI_Send(x + o, static_cast<int>(std::min(kChunk, n - o)), MPI_FLOAT, rank_ - step,
                         step, MPI_COMM_WORLD);
            break;  // this rank's partial is handed on; it waits for the broadcast
        }
    }
    for (size_t o = 0; o < n; o += kChunk)
        MPI_Bcast(x + o, static_cast<int>(std::min(kChunk, n - o)), MPI_FLOAT, 0, MPI_COMM_WORLD);
#else
    (void)x, (void)n;
#endif
}

std::vector<double> Comm::allgather(const std::vector<double>& local) const {
    if (size_ == 1) return local;
    std::vector<double> all(local.size() * static_cast<size_t>(size_));
#ifdef POLYMOE_HAVE_MPI
    MPI_Allgather(local.data(), static_cast<int>(local.size()), MPI_DOUBLE, all.data(),
                  static_cast<int>(local.size()), MPI_DOUBLE, MPI_COMM_WORLD);
#endif
    return all;
}

std::vector<std::string> Comm::allgather(const std::string& local) const {
    if (size_ == 1) return {local};
    std::vector<std::string> out(static_cast<size_t>(size_));
#ifdef POLYMOE_HAVE_MPI
    int n = static_cast<int>(local.size());
    std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
    MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    int sum = 0;
    for (int r = 0; r < size_; ++r)
        displs[static_cast<size_t>(r)] = sum, sum += counts[static_cast<size_t>(r)];
    std::string all(static_cast<size_t>(sum), '\0');
    MPI_Allgatherv(local.data(), n, MPI_CHAR, all.data(), counts.data(), displs.data(), MPI_CHAR,
                   MPI_COMM_WORLD);
    for (int r = 0; r < size_; ++r)
        out[static_cast<size_t>(r)] =
            all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                       static_cast<size_t>(counts[static_cast<size_t>(r)]));
#endif
    return out;
}

void Comm::check_same(const std::string& what, int64_t value) const {
    const std::vector<double> all = allgather(std::vector<double>{static_cast<double>(value)});
    for (int r = 0; r < size_; ++r)
        if (all[static_cast<size_t>(r)] != static_cast<double>(value))
            fail("dist",
                 "{}: expected the same value on every rank, found {} on rank {} and {} on "
                 "rank {}",
                 what, value, rank_, all[static_cast<size_t>(r)], r);
}

void Comm::barrier() const {
#ifdef POLYMOE_HAVE_MPI
    if (mpi_) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void Comm::abort(int code) const {
#ifdef POLYMOE_HAVE_MPI
    if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::exit(code);
}

void TreeAccumulator::push(const float* x) {
    std::vector<float> carry;
    if (!spare_.empty()) {
        carry = std::move(spare_.back());
        spare_.pop_back();
    }
    carry.assign(x, x + n_);
    size_t j = 0;
    for (; j < slot_.size() && !slot_[j].empty(); ++j) {
        // The older partial (lower indices) is on the left; IEEE addition commutes, so only the
        // grouping matters, and it is the tree's.
        add(slot_[j].data(), carry.data(), n_);
        carry.swap(slot_[j]);
        spare_.push_back(std::move(slot_[j]));
        slot_[j].clear();
    }
    if (j == slot_.size()) slot_.emplace_back();
    slot_[j] = std::move(carry);
}

void TreeAccumulator::take(float* out) {
    std::vector<float> acc;
    for (auto& s : slot_) {
        if (s.empty()) continue;
        if (acc.empty())
            acc = std::move(s);
        else
            add(acc.data(), s.data(), n_);
        s.clear();
    }
    if (acc.empty())
        std::fill(out, out + n_, 0.0f);
    else
        std::copy(acc.begin(), acc.end(), out);
    slot_.clear();
}

}  // namespace polymoe::dist
