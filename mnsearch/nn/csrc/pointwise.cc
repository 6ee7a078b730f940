// Pointwise (1x1) convolution, i.e. a [rows, in] x [in, out] matmul, for XLA:CPU as XLA FFI
// handlers (float32, channels last).
//
// MobileNet's 1x1 convolutions at small width have few channels (8-64) and many rows
// (batch x height x width). XLA:CPU runs those matmuls far below the machine's speed, and for the
// weight gradient (contracting over rows) it transposes an activation first: in a V2 alpha=0.25
// step the first expansion's weight gradient alone took 2.7 ms for 12.6 M multiply-adds. Here
// every product keeps a tile of outputs in vector registers: kTileRows rows x one register of
// output channels for y = x W and dx = dy W^T, and kTileRows input x one register of output
// channels, summed over blocks of 64 rows, for dW = x^T dy (blocks and chunks added in a fixed
// order).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.h"
#include "vectors.h"

namespace {

using mnsearch::AddChunksInOrder;
using mnsearch::ChunkCount;
using mnsearch::ChunkRange;
using mnsearch::Load;
using mnsearch::OverVectorBlocks;
using mnsearch::ParallelFor;
using mnsearch::Store;
using mnsearch::Vector16;
namespace ffi = xla::ffi;

// Rows per tile, so that a tile's accumulators (rows x one register of kVectorLanes floats, see
// vectors.h), its weights and a broadcast stay in vector registers whatever -march=native
// targets: AVX-512 has 32 registers (8 rows, and the 8 x 32 wide tile: 16 accumulators); AVX2
// and SSE have 16, NEON 32 (6 rows: 8 registers; 12 rows measured 10% slower on an AVX2 EPYC).
// The tile changes which outputs are summed together, never the order of a sum, so every
// target computes the same values.
#if defined(__AVX512F__)
constexpr int64_t kTileRows = 8;
constexpr bool kWideTiles = true;
#else
constexpr int64_t kTileRows = 6;
constexpr bool kWideTiles = false;
#endif

// out[r, c:c+lanes] = a[r, :] b[:, c:c+lanes] for kRows rows starting at `row`. `panel` is
// b[:, c:c+lanes] packed contiguously ([inner, lanes], see PackPanels), so the loop over k
// streams one run of memory instead of touching a new, often split, cache line of b per k.
template <int64_t kRows, typename V>
inline void ProductTile(const float* __restrict a, const float* __restrict panel,
                        float* __restrict out, int64_t row, int64_t inner, int64_t columns,
                        int64_t c) {
  constexpr int64_t lanes = sizeof(V) / sizeof(float);
  V sum[kRows] = {};
  for (int64_t k = 0; k < inner; ++k) {
    V weights = Load<V>(panel + k * lanes);
    for (int64_t r = 0; r < kRows; ++r) sum[r] += a[(row + r) * inner + k] * weights;
  }
  for (int64_t r = 0; r < kRows; ++r) Store(out + (row + r) * columns + c, sum[r]);
}

// ProductTile over 8 rows x 32 columns (two 16-column panels): 16 accumulators, each broadcast
// of a used twice.
inline void WideProductTile(const float* __restrict a, const float* __restrict left_panel,
                            const float* __restrict right_panel, float* __restrict out,
                            int64_t row, int64_t inner, int64_t columns, int64_t c) {
  Vector16 left[8] = {}, right[8] = {};
  for (int64_t k = 0; k < inner; ++k) {
    Vector16 weights_left = Load<Vector16>(left_panel + k * 16);
    Vector16 weights_right = Load<Vector16>(right_panel + k * 16);
    for (int64_t r = 0; r < 8; ++r) {
      float value = a[(row + r) * inner + k];
      left[r] += value * weights_left;
      right[r] += value * weights_right;
    }
  }
  for (int64_t r = 0; r < 8; ++r) {
    Store(out + (row + r) * columns + c, left[r]);
    Store(out + (row + r) * columns + c + 16, right[r]);
  }
}

// b ([inner, columns], element [k, j] at b[k * k_stride + j * j_stride], so W and W^T are read
// from the same array) as the column panels OverVectorBlocks walks: the panel of the block at
// column c (lanes wide) is b[:, c:c+lanes] stored row after row at packed[c * inner].
std::vector<float> PackPanels(const float* b, int64_t inner, int64_t columns, int64_t k_stride,
                              int64_t j_stride) {
  std::vector<float> packed(inner * columns);
  OverVectorBlocks(columns, [&](auto block, int64_t c) {
    constexpr int64_t lanes = sizeof(block) / sizeof(float);
    float* panel = packed.data() + c * inner;
    for (int64_t k = 0; k < inner; ++k)
      for (int64_t j = 0; j < lanes; ++j) panel[k * lanes + j] = b[k * k_stride + (c + j) * j_stride];
  });
  return packed;
}

// out = a b for rows [first, last): a is [rows, inner], b is [inner, columns] as PackPanels.
void ProductRows(const float* a, const float* packed, float* out, int64_t first, int64_t last,
                 int64_t inner, int64_t columns) {
  int64_t row = first;
  for (; row + kTileRows <= last; row += kTileRows) {
    int64_t c = 0;
    if constexpr (kWideTiles) {
      for (; c + 32 <= columns; c += 32) {
        WideProductTile(a, packed + c * inner, packed + (c + 16) * inner, out, row, inner,
                        columns, c);
      }
    }
    OverVectorBlocks(columns - c, [&](auto block, int64_t offset) {
      ProductTile<kTileRows, decltype(block)>(a, packed + (c + offset) * inner, out, row, inner,
                                              columns, c + offset);
    });
  }
  for (; row < last; ++row) {
    OverVectorBlocks(columns, [&](auto block, int64_t c) {
      ProductTile<1, decltype(block)>(a, packed + c * inner, out, row, inner, columns, c);
    });
  }
}

// sums[i, c:c+lanes] += sum over rows [first, last) of a[row, i] * b[row, c:c+lanes], for kInner
// rows i of the result starting at `i0`.
template <int64_t kInner, typename V>
inline void TransposedTile(const float* __restrict a, const float* __restrict b,
                           float* __restrict sums, int64_t first, int64_t last, int64_t inner,
                           int64_t columns, int64_t i0, int64_t c) {
  V sum[kInner] = {};
  for (int64_t row = first; row < last; ++row) {
    V values = Load<V>(b + row * columns + c);
    for (int64_t i = 0; i < kInner; ++i) sum[i] += a[row * inner + i0 + i] * values;
  }
  for (int64_t i = 0; i < kInner; ++i) {
    float* target = sums + (i0 + i) * columns + c;
    Store(target, Load<V>(target) + sum[i]);
  }
}

// Rows summed per pass over the tiles of a^T b: a block of a and b ([kRowBlock, inner] and
// [kRowBlock, columns], 64 KB each at 256 channels) stays in L2 while every tile reads it. Passing all
// rows per tile instead streamed both whole activations from memory once per tile: 41% of an
// AVX2 EPYC's training step, waiting on loads. The block is the same on every target, so the
// sums' order (block after block, rows in order within one) is too.
constexpr int64_t kRowBlock = 64;

// sums[i0:i1] += a[first:last, i0:i1]^T b[first:last]: a is [rows, inner], b is [rows, columns].
void TransposedProductRows(const float* a, const float* b, float* sums, int64_t first,
                           int64_t last, int64_t inner, int64_t columns, int64_t i0, int64_t i1) {
  for (int64_t start = first; start < last; start += kRowBlock) {
    const int64_t stop = std::min(start + kRowBlock, last);
    int64_t i = i0;
    for (; i + kTileRows <= i1; i += kTileRows) {
      OverVectorBlocks(columns, [&](auto block, int64_t c) {
        TransposedTile<kTileRows, decltype(block)>(a, b, sums, start, stop, inner, columns, i,
                                                   c);
      });
    }
    for (; i < i1; ++i) {
      OverVectorBlocks(columns, [&](auto block, int64_t c) {
        TransposedTile<1, decltype(block)>(a, b, sums, start, stop, inner, columns, i, c);
      });
    }
  }
}

// a^T b. Wide a (inner >= 8 per chunk) is split over blocks of its columns, so each thread owns
// whole rows of the result; narrow a is split over rows, into per-chunk sums added in order.
void TransposedProduct(ffi::ThreadPool& pool, const float* a, const float* b, float* result,
                       int64_t rows, int64_t inner, int64_t columns) {
  const int64_t size = inner * columns;
  int64_t chunks = ChunkCount(pool, rows);
  std::fill(result, result + size, 0.0f);
  if (inner >= 8 * chunks) {
    int64_t blocks = inner / 8;
    ParallelFor(pool, chunks, [&](int64_t chunk) {
      int64_t first, last;
      ChunkRange(chunk, chunks, blocks, &first, &last);
      TransposedProductRows(a, b, result, 0, rows, inner, columns, first * 8,
                            chunk + 1 == chunks ? inner : last * 8);
    });
    return;
  }
  std::vector<float> partial(chunks * size, 0.0f);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    int64_t first, last;
    ChunkRange(chunk, chunks, rows, &first, &last);
    TransposedProductRows(a, b, partial.data() + chunk * size, first, last, inner, columns, 0,
                          inner);
  });
  AddChunksInOrder(partial, chunks, size, result);
}

// out = a b, b as PackPanels reads it.
void Product(ffi::ThreadPool& pool, const float* a, const float* b, float* out, int64_t rows,
             int64_t inner, int64_t columns, int64_t k_stride, int64_t j_stride) {
  const std::vector<float> packed = PackPanels(b, inner, columns, k_stride, j_stride);
  int64_t chunks = ChunkCount(pool, rows);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    int64_t first, last;
    ChunkRange(chunk, chunks, rows, &first, &last);
    ProductRows(a, packed.data(), out, first, last, inner, columns);
  });
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                   ffi::ResultBuffer<ffi::F32> y) {
  auto shape = kernel.dimensions();
  if (shape.size() != 2 || x.element_count() % shape[0] != 0) {
    return ffi::Error::InvalidArgument("mnsearch pointwise: expected x (..., in), kernel (in, out)");
  }
  Product(pool, x.typed_data(), kernel.typed_data(), y->typed_data(),
          x.element_count() / shape[0], shape[0], shape[1], shape[1], 1);
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                    ffi::Buffer<ffi::F32> grad, ffi::ResultBuffer<ffi::F32> input_grad,
                    ffi::ResultBuffer<ffi::F32> kernel_grad) {
  auto shape = kernel.dimensions();
  const int64_t inner = shape[0], columns = shape[1];
  const int64_t rows = x.element_count() / inner;
  // dx = dy W^T: W^T[k, j] = W[j, k], so W^T's rows are W's columns (stride 1).
  Product(pool, grad.typed_data(), kernel.typed_data(), input_grad->typed_data(), rows, columns,
          inner, 1, columns);
  TransposedProduct(pool, x.typed_data(), grad.typed_data(), kernel_grad->typed_data(), rows,
                    inner, columns);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(MnsearchPointwiseForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(MnsearchPointwiseBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
