// Depthwise convolution (NHWC, float32, kernel K x K x C) for XLA:CPU as XLA FFI handlers.
//
// XLA:CPU lowers a grouped convolution and its gradients poorly, and the K*K shifted
// multiply-adds that replace it become dozens of small fused loops per layer (a V2 training
// step launches ~8,000 kernels). These handlers gather every output (and every input gradient)
// in registers over 16- or 8-channel blocks, one store per element, and accumulate the kernel
// gradient per image chunk. Work is split over the batch and run on XLA's intra-op thread pool; the
// kernel gradient is reduced over fixed batch chunks in a fixed order, so results do not depend
// on which thread ran which chunk. Built and loaded by mnsearch/native.py.
#include <algorithm>
#include <cstdint>
#include <utility>
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
namespace ffi = xla::ffi;

struct Geometry {
  int64_t batch, height, width, channels, out_height, out_width, kernel, stride, pad_top,
      pad_left;

  int64_t InputOffset(int64_t n, int64_t row, int64_t column) const {
    return ((n * height + row) * width + column) * channels;
  }
  int64_t OutputOffset(int64_t n, int64_t row, int64_t column) const {
    return ((n * out_height + row) * out_width + column) * channels;
  }
};

// The taps of one output position that see real input (not padding), as [first, last) ranges.
struct TapRange {
  int64_t first, last;
};

inline TapRange ValidTaps(int64_t out_index, int64_t stride, int64_t pad, int64_t size,
                          int64_t kernel) {
  int64_t origin = out_index * stride - pad;
  return {std::max<int64_t>(0, -origin), std::min<int64_t>(kernel, size - origin)};
}

// Output channels [c, c + lanes) of one output position; the sum stays in registers.
template <typename V>
inline void ForwardBlock(const Geometry& g, const float* __restrict x,
                         const float* __restrict kernel, float* __restrict output, int64_t n,
                         int64_t row0, int64_t column0, TapRange rows, TapRange columns,
                         int64_t c) {
  V sum = {};
  for (int64_t tap_row = rows.first; tap_row < rows.last; ++tap_row) {
    for (int64_t tap_column = columns.first; tap_column < columns.last; ++tap_column) {
      sum += Load<V>(x + g.InputOffset(n, row0 + tap_row, column0 + tap_column) + c) *
             Load<V>(kernel + (tap_row * g.kernel + tap_column) * g.channels + c);
    }
  }
  Store(output + c, sum);
}

void ForwardRange(const Geometry& g, const float* __restrict x, const float* __restrict kernel,
                  float* __restrict y, int64_t first, int64_t last) {
  for (int64_t n = first; n < last; ++n) {
    for (int64_t out_row = 0; out_row < g.out_height; ++out_row) {
      TapRange rows = ValidTaps(out_row, g.stride, g.pad_top, g.height, g.kernel);
      int64_t row0 = out_row * g.stride - g.pad_top;
      for (int64_t out_column = 0; out_column < g.out_width; ++out_column) {
        TapRange columns = ValidTaps(out_column, g.stride, g.pad_left, g.width, g.kernel);
        int64_t column0 = out_column * g.stride - g.pad_left;
        float* output = y + g.OutputOffset(n, out_row, out_column);
        OverVectorBlocks(g.channels, [&](auto block, int64_t c) {
          ForwardBlock<decltype(block)>(g, x, kernel, output, n, row0, column0, rows,
                                               columns, c);
        });
      }
    }
  }
}

// For input index `index`: the (tap, output index) pairs whose window covers it.
std::vector<std::pair<int64_t, int64_t>> Covering(int64_t index, int64_t stride, int64_t pad,
                                                  int64_t out_size, int64_t kernel) {
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t tap = 0; tap < kernel; ++tap) {
    int64_t shifted = index + pad - tap;
    if (shifted < 0 || shifted % stride != 0 || shifted / stride >= out_size) continue;
    pairs.emplace_back(tap, shifted / stride);
  }
  return pairs;
}

// Input gradient of channels [c, c + lanes) at one input position, gathered from the outputs
// that read it (one store per element, the sum in registers).
template <typename V>
inline void InputGradientBlock(const Geometry& g, const float* __restrict kernel,
                               const float* __restrict grad, float* __restrict input_grad,
                               int64_t n, const std::vector<std::pair<int64_t, int64_t>>& rows,
                               const std::vector<std::pair<int64_t, int64_t>>& columns,
                               int64_t c) {
  V sum = {};
  for (const auto& [tap_row, out_row] : rows) {
    for (const auto& [tap_column, out_column] : columns) {
      sum += Load<V>(grad + g.OutputOffset(n, out_row, out_column) + c) *
             Load<V>(kernel + (tap_row * g.kernel + tap_column) * g.channels + c);
    }
  }
  Store(input_grad + c, sum);
}

// Kernel gradient of channels [c, c + lanes) from one output position, into `kernel_grad`.
template <typename V>
inline void KernelGradientBlock(const Geometry& g, const float* __restrict x,
                                const float* __restrict output_grad,
                                float* __restrict kernel_grad, int64_t n, int64_t row0,
                                int64_t column0, TapRange rows, TapRange columns, int64_t c) {
  V gradient = Load<V>(output_grad + c);
  for (int64_t tap_row = rows.first; tap_row < rows.last; ++tap_row) {
    for (int64_t tap_column = columns.first; tap_column < columns.last; ++tap_column) {
      float* weight_grad = kernel_grad + (tap_row * g.kernel + tap_column) * g.channels + c;
      Store(weight_grad, Load<V>(weight_grad) +
                             Load<V>(x + g.InputOffset(n, row0 + tap_row, column0 + tap_column) +
                                     c) * gradient);
    }
  }
}

// The input gradient of this chunk's images (gathered per input position) and their kernel
// gradient, accumulated into `kernel_grad` (K*K*C floats).
void BackwardRange(const Geometry& g, const float* __restrict x, const float* __restrict kernel,
                   const float* __restrict grad, float* __restrict input_grad,
                   float* __restrict kernel_grad, int64_t first, int64_t last) {
  std::fill(kernel_grad, kernel_grad + g.kernel * g.kernel * g.channels, 0.0f);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> row_taps, column_taps;
  for (int64_t row = 0; row < g.height; ++row)
    row_taps.push_back(Covering(row, g.stride, g.pad_top, g.out_height, g.kernel));
  for (int64_t column = 0; column < g.width; ++column)
    column_taps.push_back(Covering(column, g.stride, g.pad_left, g.out_width, g.kernel));
  for (int64_t n = first; n < last; ++n) {
    for (int64_t out_row = 0; out_row < g.out_height; ++out_row) {
      TapRange rows = ValidTaps(out_row, g.stride, g.pad_top, g.height, g.kernel);
      int64_t row0 = out_row * g.stride - g.pad_top;
      for (int64_t out_column = 0; out_column < g.out_width; ++out_column) {
        TapRange columns = ValidTaps(out_column, g.stride, g.pad_left, g.width, g.kernel);
        int64_t column0 = out_column * g.stride - g.pad_left;
        const float* output_grad = grad + g.OutputOffset(n, out_row, out_column);
        OverVectorBlocks(g.channels, [&](auto block, int64_t c) {
          KernelGradientBlock<decltype(block)>(g, x, output_grad, kernel_grad, n, row0,
                                                      column0, rows, columns, c);
        });
      }
    }
    for (int64_t row = 0; row < g.height; ++row) {
      for (int64_t column = 0; column < g.width; ++column) {
        float* gradient = input_grad + g.InputOffset(n, row, column);
        OverVectorBlocks(g.channels, [&](auto block, int64_t c) {
          InputGradientBlock<decltype(block)>(g, kernel, grad, gradient, n,
                                                     row_taps[row], column_taps[column], c);
        });
      }
    }
  }
}

ffi::Error CheckShapes(ffi::Buffer<ffi::F32>& x, ffi::Buffer<ffi::F32>& kernel,
                       ffi::Span<const int64_t> out_dims, int64_t stride, int64_t pad_top,
                       int64_t pad_left, Geometry* g) {
  auto in_dims = x.dimensions();
  auto kernel_dims = kernel.dimensions();
  if (in_dims.size() != 4 || kernel_dims.size() != 3 || out_dims.size() != 4 ||
      kernel_dims[0] != kernel_dims[1] || kernel_dims[2] != in_dims[3] ||
      out_dims[0] != in_dims[0] || out_dims[3] != in_dims[3] || stride < 1) {
    return ffi::Error::InvalidArgument(
        "mnsearch depthwise: expected x (N,H,W,C), kernel (K,K,C), output (N,OH,OW,C)");
  }
  *g = Geometry{in_dims[0], in_dims[1], in_dims[2], in_dims[3], out_dims[1], out_dims[2],
                kernel_dims[0], stride, pad_top, pad_left};
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                   ffi::ResultBuffer<ffi::F32> y, int64_t stride, int64_t pad_top,
                   int64_t pad_left) {
  Geometry g;
  ffi::Error error = CheckShapes(x, kernel, y->dimensions(), stride, pad_top, pad_left, &g);
  if (error.failure()) return error;
  int64_t chunks = ChunkCount(pool, g.batch);
  const float* input = x.typed_data();
  const float* weights = kernel.typed_data();
  float* output = y->typed_data();
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    int64_t first, last;
    ChunkRange(chunk, chunks, g.batch, &first, &last);
    ForwardRange(g, input, weights, output, first, last);
  });
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                    ffi::Buffer<ffi::F32> grad, ffi::ResultBuffer<ffi::F32> input_grad,
                    ffi::ResultBuffer<ffi::F32> kernel_grad, int64_t stride, int64_t pad_top,
                    int64_t pad_left) {
  Geometry g;
  ffi::Error error = CheckShapes(x, kernel, grad.dimensions(), stride, pad_top, pad_left, &g);
  if (error.failure()) return error;
  int64_t chunks = ChunkCount(pool, g.batch);
  int64_t taps = g.kernel * g.kernel * g.channels;
  std::vector<float> partial(chunks * taps);
  const float* input = x.typed_data();
  const float* weights = kernel.typed_data();
  const float* output_grad = grad.typed_data();
  float* input_gradient = input_grad->typed_data();
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    int64_t first, last;
    ChunkRange(chunk, chunks, g.batch, &first, &last);
    BackwardRange(g, input, weights, output_grad, input_gradient, partial.data() + chunk * taps,
                  first, last);
  });
  AddChunksInOrder(partial, chunks, taps, kernel_grad->typed_data());
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(MnsearchDepthwiseForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(MnsearchDepthwiseBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));
