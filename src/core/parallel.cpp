// Thread-count setting shared by every parallel_for (see parallel.h).
#include "core/parallel.h"

#include <omp.h>

namespace polymoe {

namespace {
int g_threads = 0;
}

void set_num_threads(int n) {
    g_threads = n > 0 ? n : omp_get_num_procs();
    omp_set_num_threads(g_threads);  // oneDNN (OpenMP runtime) follows this
}

int num_threads() {
    if (g_threads <= 0) g_threads = omp_get_num_procs();
    return g_threads;
}

}  // namespace polymoe
