// Work splitting shared by the native kernels: fixed chunks run on XLA's intra-op thread pool.
#ifndef MNSEARCH_NATIVE_PARALLEL_H_
#define MNSEARCH_NATIVE_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace mnsearch {

namespace ffi = xla::ffi;

// Runs body(chunk) for every chunk in [0, chunks) on the pool's threads and the calling thread.
// The caller claims chunks too and only waits for chunks already running elsewhere, so a busy
// or absent pool cannot deadlock it. Late helpers find nothing left and touch only `state`.
template <typename Body>
void ParallelFor(ffi::ThreadPool& pool, int64_t chunks, const Body& body) {
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex mutex;
    std::condition_variable finished;
  };
  auto state = std::make_shared<State>();
  const Body* body_pointer = &body;
  auto work = [state, chunks, body_pointer]() {
    for (;;) {
      int64_t chunk = state->next.fetch_add(1);
      if (chunk >= chunks) return;
      (*body_pointer)(chunk);
      if (state->done.fetch_add(1) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(state->mutex);
        state->finished.notify_all();
      }
    }
  };
  int64_t helpers = std::min<int64_t>(pool.num_threads(), chunks - 1);
  for (int64_t helper = 0; helper < helpers; ++helper) pool.Schedule([work]() { work(); });
  work();
  std::unique_lock<std::mutex> lock(state->mutex);
  state->finished.wait(lock, [&state, chunks]() { return state->done.load() == chunks; });
}

inline int64_t ChunkCount(ffi::ThreadPool& pool, int64_t batch) {
  return std::max<int64_t>(1, std::min<int64_t>(batch, 2 * std::max<int64_t>(1, pool.num_threads())));
}

// Same split for every call with this batch and pool size: the reduction order is fixed.
inline void ChunkRange(int64_t chunk, int64_t chunks, int64_t batch, int64_t* first, int64_t* last) {
  *first = batch * chunk / chunks;
  *last = batch * (chunk + 1) / chunks;
}

// totals[i] = the sum over chunks, in chunk order, of partial[chunk * size + i]: per-thread
// partial sums reduced the same way whichever thread computed which chunk.
template <typename Total>
inline void AddChunksInOrder(const std::vector<float>& partial, int64_t chunks, int64_t size,
                             Total* totals) {
  std::fill(totals, totals + size, Total(0));
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t i = 0; i < size; ++i) totals[i] += partial[chunk * size + i];
}

}  // namespace mnsearch

#endif  // MNSEARCH_NATIVE_PARALLEL_H_
