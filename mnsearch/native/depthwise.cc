// Depthwise convolution (NHWC, float32, kernel K x K x C) for XLA:CPU as XLA FFI handlers.
//
// XLA:CPU lowers a grouped convolution and its gradients poorly, and the K*K shifted
// multiply-adds that replace it become dozens of small fused loops per layer (a V2 training
// step launches ~8,000 kernels). These handlers do one pass per direction: the forward sum, and
// one backward pass that reads the output gradient once for both the input gradient and the
// kernel gradient. Work is split over the batch and run on XLA's intra-op thread pool; the
// kernel gradient is reduced over fixed batch chunks in a fixed order, so results do not depend
// on which thread ran which chunk. Built and loaded by mnsearch/native_depthwise.py.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.h"

namespace {

using mnsearch::ChunkCount;
using mnsearch::ChunkRange;
using mnsearch::ParallelFor;
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

void ForwardRange(const Geometry& g, const float* __restrict x, const float* __restrict kernel,
                  float* __restrict y, int64_t first, int64_t last) {
  const int64_t channels = g.channels;
  for (int64_t n = first; n < last; ++n) {
    for (int64_t out_row = 0; out_row < g.out_height; ++out_row) {
      for (int64_t out_column = 0; out_column < g.out_width; ++out_column) {
        float* __restrict output = y + g.OutputOffset(n, out_row, out_column);
        std::fill(output, output + channels, 0.0f);
        for (int64_t tap_row = 0; tap_row < g.kernel; ++tap_row) {
          int64_t row = out_row * g.stride + tap_row - g.pad_top;
          if (row < 0 || row >= g.height) continue;
          for (int64_t tap_column = 0; tap_column < g.kernel; ++tap_column) {
            int64_t column = out_column * g.stride + tap_column - g.pad_left;
            if (column < 0 || column >= g.width) continue;
            const float* __restrict input = x + g.InputOffset(n, row, column);
            const float* __restrict weight = kernel + (tap_row * g.kernel + tap_column) * channels;
            for (int64_t c = 0; c < channels; ++c) output[c] += input[c] * weight[c];
          }
        }
      }
    }
  }
}

// One pass over the output gradient: scatter it into the input gradient and accumulate the
// kernel gradient of this chunk's images into `kernel_grad` (K*K*C floats).
void BackwardRange(const Geometry& g, const float* __restrict x, const float* __restrict kernel,
                   const float* __restrict grad, float* __restrict input_grad,
                   float* __restrict kernel_grad, int64_t first, int64_t last) {
  const int64_t channels = g.channels;
  std::fill(input_grad + g.InputOffset(first, 0, 0), input_grad + g.InputOffset(last, 0, 0), 0.0f);
  std::fill(kernel_grad, kernel_grad + g.kernel * g.kernel * channels, 0.0f);
  for (int64_t n = first; n < last; ++n) {
    for (int64_t out_row = 0; out_row < g.out_height; ++out_row) {
      for (int64_t out_column = 0; out_column < g.out_width; ++out_column) {
        const float* __restrict output_grad = grad + g.OutputOffset(n, out_row, out_column);
        for (int64_t tap_row = 0; tap_row < g.kernel; ++tap_row) {
          int64_t row = out_row * g.stride + tap_row - g.pad_top;
          if (row < 0 || row >= g.height) continue;
          for (int64_t tap_column = 0; tap_column < g.kernel; ++tap_column) {
            int64_t column = out_column * g.stride + tap_column - g.pad_left;
            if (column < 0 || column >= g.width) continue;
            int64_t tap = (tap_row * g.kernel + tap_column) * channels;
            const float* __restrict input = x + g.InputOffset(n, row, column);
            float* __restrict input_gradient = input_grad + g.InputOffset(n, row, column);
            const float* __restrict weight = kernel + tap;
            float* __restrict weight_gradient = kernel_grad + tap;
            for (int64_t c = 0; c < channels; ++c) {
              input_gradient[c] += output_grad[c] * weight[c];
              weight_gradient[c] += input[c] * output_grad[c];
            }
          }
        }
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
  float* kernel_gradient = kernel_grad->typed_data();
  std::copy(partial.begin(), partial.begin() + taps, kernel_gradient);
  for (int64_t chunk = 1; chunk < chunks; ++chunk) {
    const float* values = partial.data() + chunk * taps;
    for (int64_t i = 0; i < taps; ++i) kernel_gradient[i] += values[i];
  }
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
