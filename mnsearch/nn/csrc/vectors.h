// Channel blocks as GCC/Clang vector types, shared by the native kernels: one AVX-512 register
// (or two AVX2 ones, or four SSE ones where the CPU has less), so a block's sum stays in
// registers whatever -march=native targets.
#ifndef MNSEARCH_NATIVE_VECTORS_H_
#define MNSEARCH_NATIVE_VECTORS_H_

#include <cstdint>

namespace mnsearch {

typedef float Vector16 __attribute__((vector_size(64)));
typedef float Vector8 __attribute__((vector_size(32)));
typedef float Vector1 __attribute__((vector_size(4)));

template <typename V>
inline V Load(const float* pointer) {
  V value;
  __builtin_memcpy(&value, pointer, sizeof(V));
  return value;
}

template <typename V>
inline void Store(float* pointer, V value) {
  __builtin_memcpy(pointer, &value, sizeof(V));
}

// Runs block(V{}, c) over [0, count) in 16-, then 8-, then 1-float vectors.
template <typename Block>
inline void OverVectorBlocks(int64_t count, const Block& block) {
  int64_t c = 0;
  for (; c + 16 <= count; c += 16) block(Vector16{}, c);
  for (; c + 8 <= count; c += 8) block(Vector8{}, c);
  for (; c < count; ++c) block(Vector1{}, c);
}

}  // namespace mnsearch

#endif  // MNSEARCH_NATIVE_VECTORS_H_
