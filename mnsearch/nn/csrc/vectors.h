// Channel blocks as GCC/Clang vector types, shared by the native kernels: one vector register
// of the CPU -march=native targets (16 floats on AVX-512, 8 on AVX/AVX2, 4 on SSE and NEON), so
// a block's sum stays in a register. A type wider than the CPU's registers is not split into
// registers: GCC keeps it on the stack and moves it through general registers (vmovq/vpinsrq);
// on an AVX2 EPYC that halved the native training step's speed. Lanes never mix, so the block
// width changes no value.
#ifndef MNSEARCH_NATIVE_VECTORS_H_
#define MNSEARCH_NATIVE_VECTORS_H_

#include <cstdint>

namespace mnsearch {

typedef float Vector16 __attribute__((vector_size(64)));
typedef float Vector8 __attribute__((vector_size(32)));
typedef float Vector4 __attribute__((vector_size(16)));
typedef float Vector1 __attribute__((vector_size(4)));

#if defined(__AVX512F__)
constexpr int64_t kVectorLanes = 16;
#elif defined(__AVX__)
constexpr int64_t kVectorLanes = 8;
#else
constexpr int64_t kVectorLanes = 4;
#endif

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

// Runs block(V{}, c) over [0, count) in vectors of the widest register (kVectorLanes floats),
// then narrower ones, then single floats.
template <typename Block>
inline void OverVectorBlocks(int64_t count, const Block& block) {
  int64_t c = 0;
  if constexpr (kVectorLanes >= 16) {
    for (; c + 16 <= count; c += 16) block(Vector16{}, c);
  }
  if constexpr (kVectorLanes >= 8) {
    for (; c + 8 <= count; c += 8) block(Vector8{}, c);
  }
  for (; c + 4 <= count; c += 4) block(Vector4{}, c);
  for (; c < count; ++c) block(Vector1{}, c);
}

}  // namespace mnsearch

#endif  // MNSEARCH_NATIVE_VECTORS_H_
