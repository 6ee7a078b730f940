// Training-mode BatchNorm + activation for XLA:CPU as XLA FFI handlers (NHWC, float32).
//
// Same arithmetic as mnsearch.ops.batch_norm_activation (flax.nnx.BatchNorm's statistics:
// biased variance E[x^2] - E[x]^2 clipped at 0). XLA:CPU computes each statistic and each
// backward sum in its own pass over the activation, recomputes the normalised input in yet
// another, and runs many of these passes on one core: BN took about 45% of a V2 training step's
// kernel time. Here the forward pass reads x twice (statistics, then output) and the backward
// pass reads x and the output gradient twice (the two sums, then dx), split over rows on XLA's
// intra-op thread pool. Sums run over blocks of 64 rows in float (vectorised), then per chunk, then
// over chunks in a fixed order in double, so the result does not depend on thread timing.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "parallel.h"

namespace {

using mnsearch::AddChunksInOrder;
using mnsearch::ChunkCount;
using mnsearch::ChunkRange;
using mnsearch::ParallelFor;
namespace ffi = xla::ffi;

enum Activation : int64_t { kIdentity = 0, kRelu = 1, kRelu6 = 2, kHardSwish = 3 };

// Branch-free clamps (not std::fmin/fmax, whose NaN rules stop the loops from vectorising).
inline float Clamp(float z, float low, float high) {
  z = z > low ? z : low;
  return z < high ? z : high;
}

inline float Activate(float z, int64_t activation) {
  switch (activation) {
    case kRelu: return z > 0.0f ? z : 0.0f;
    case kRelu6: return Clamp(z, 0.0f, 6.0f);
    case kHardSwish: return z * (Clamp(z + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f));
    default: return z;
  }
}

// d activation / dz with jax.nn's conventions (relu and relu6 have zero slope at their kinks).
inline float Slope(float z, int64_t activation) {
  switch (activation) {
    case kRelu: return z > 0.0f ? 1.0f : 0.0f;
    case kRelu6: return (z > 0.0f && z < 6.0f) ? 1.0f : 0.0f;
    case kHardSwish:
      return Clamp(z + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f) +
             ((z > -3.0f && z < 3.0f) ? z * (1.0f / 6.0f) : 0.0f);
    default: return 1.0f;
  }
}

template <int64_t kActivation>
void ApplyRows(const float* __restrict x, const float* __restrict multiplier,
               const float* __restrict offset, float* __restrict y, int64_t first, int64_t last,
               int64_t channels) {
  for (int64_t row = first; row < last; ++row) {
    const float* __restrict in = x + row * channels;
    float* __restrict out = y + row * channels;
    for (int64_t c = 0; c < channels; ++c) out[c] = Activate(in[c] * multiplier[c] + offset[c], kActivation);
  }
}

template <int64_t kActivation>
void SumGradientRows(const float* __restrict x, const float* __restrict grad,
                     const float* __restrict mean, const float* __restrict inverse,
                     const float* __restrict scale, const float* __restrict bias,
                     float* __restrict sum_grad, float* __restrict sum_grad_normalized,
                     int64_t first, int64_t last, int64_t channels) {
  for (int64_t row = first; row < last; ++row) {
    const float* __restrict in = x + row * channels;
    const float* __restrict g = grad + row * channels;
    for (int64_t c = 0; c < channels; ++c) {
      float normalized = (in[c] - mean[c]) * inverse[c];
      float grad_z = g[c] * Slope(normalized * scale[c] + bias[c], kActivation);
      sum_grad[c] += grad_z;
      sum_grad_normalized[c] += grad_z * normalized;
    }
  }
}

template <int64_t kActivation>
void InputGradientRows(const float* __restrict x, const float* __restrict grad,
                       const float* __restrict mean, const float* __restrict inverse,
                       const float* __restrict scale, const float* __restrict bias,
                       const float* __restrict grad_bias, const float* __restrict grad_scale,
                       const float* __restrict grad_mean, const float* __restrict grad_variance,
                       float count, float* __restrict grad_x, int64_t first, int64_t last,
                       int64_t channels) {
  for (int64_t row = first; row < last; ++row) {
    const float* __restrict in = x + row * channels;
    const float* __restrict g = grad + row * channels;
    float* __restrict out = grad_x + row * channels;
    for (int64_t c = 0; c < channels; ++c) {
      float centered = in[c] - mean[c];
      float normalized = centered * inverse[c];
      float grad_z = g[c] * Slope(normalized * scale[c] + bias[c], kActivation);
      out[c] = (scale[c] * inverse[c] / count) *
                   (count * grad_z - grad_bias[c] - normalized * grad_scale[c]) +
               (grad_mean[c] + 2.0f * grad_variance[c] * centered) / count;
    }
  }
}

// Calls body<activation>() with the activation as a compile-time constant.
template <template <int64_t> class Dispatch, typename... Args>
void WithActivation(int64_t activation, Args&&... args) {
  switch (activation) {
    case kRelu: Dispatch<kRelu>::Run(args...); break;
    case kRelu6: Dispatch<kRelu6>::Run(args...); break;
    case kHardSwish: Dispatch<kHardSwish>::Run(args...); break;
    default: Dispatch<kIdentity>::Run(args...); break;
  }
}

template <int64_t A> struct Apply {
  template <typename... Args> static void Run(Args&&... args) { ApplyRows<A>(args...); }
};
template <int64_t A> struct SumGradient {
  template <typename... Args> static void Run(Args&&... args) { SumGradientRows<A>(args...); }
};
template <int64_t A> struct InputGradient {
  template <typename... Args> static void Run(Args&&... args) { InputGradientRows<A>(args...); }
};

constexpr int64_t kBlockRows = 64;

// `sums` per-channel sums over all rows: row_sums(block, first, last) adds rows [first, last)
// into `block`; blocks are added into per-chunk partials, and chunks in order into `totals`.
template <typename RowSums>
void ChunkedSums(ffi::ThreadPool& pool, int64_t rows, int64_t channels, int64_t sums,
                 std::vector<double>* totals, const RowSums& row_sums) {
  const int64_t width = sums * channels;
  int64_t chunks = ChunkCount(pool, rows);
  std::vector<float> partial(chunks * width, 0.0f);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    int64_t first, last;
    ChunkRange(chunk, chunks, rows, &first, &last);
    std::vector<float> block(width);
    float* __restrict chunk_sums = partial.data() + chunk * width;
    for (int64_t start = first; start < last; start += kBlockRows) {
      std::fill(block.begin(), block.end(), 0.0f);
      row_sums(block.data(), start, std::min(start + kBlockRows, last));
      for (int64_t i = 0; i < width; ++i) chunk_sums[i] += block[i];
    }
  });
  totals->resize(width);
  AddChunksInOrder(partial, chunks, width, totals->data());
}

template <typename Rows>
void ChunkedRows(ffi::ThreadPool& pool, int64_t rows, const Rows& body) {
  int64_t chunks = ChunkCount(pool, rows);
  ParallelFor(pool, chunks, [&](int64_t chunk) {
    int64_t first, last;
    ChunkRange(chunk, chunks, rows, &first, &last);
    body(first, last);
  });
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> scale,
                   ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> y,
                   ffi::ResultBuffer<ffi::F32> mean, ffi::ResultBuffer<ffi::F32> variance,
                   float epsilon, int64_t activation) {
  const int64_t channels = scale.element_count();
  const int64_t rows = x.element_count() / channels;
  const float* input = x.typed_data();
  std::vector<double> totals;
  ChunkedSums(pool, rows, channels, 2, &totals, [&](float* sums, int64_t first, int64_t last) {
    float* __restrict sum = sums;
    float* __restrict sum_squares = sums + channels;
    for (int64_t row = first; row < last; ++row) {
      const float* __restrict in = input + row * channels;
      for (int64_t c = 0; c < channels; ++c) {
        sum[c] += in[c];
        sum_squares[c] += in[c] * in[c];
      }
    }
  });
  std::vector<float> multiplier(channels), offset(channels);
  float* mean_out = mean->typed_data();
  float* variance_out = variance->typed_data();
  for (int64_t c = 0; c < channels; ++c) {
    float average = static_cast<float>(totals[c] / rows);
    float square = static_cast<float>(totals[channels + c] / rows);
    mean_out[c] = average;
    variance_out[c] = std::fmax(square - average * average, 0.0f);
    multiplier[c] = scale.typed_data()[c] / std::sqrt(variance_out[c] + epsilon);
    offset[c] = bias.typed_data()[c] - average * multiplier[c];
  }
  float* output = y->typed_data();
  ChunkedRows(pool, rows, [&](int64_t first, int64_t last) {
    WithActivation<Apply>(activation, input, multiplier.data(), offset.data(), output, first, last,
                          channels);
  });
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> scale,
                    ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> mean,
                    ffi::Buffer<ffi::F32> variance, ffi::Buffer<ffi::F32> grad_y,
                    ffi::Buffer<ffi::F32> grad_mean, ffi::Buffer<ffi::F32> grad_variance,
                    ffi::ResultBuffer<ffi::F32> grad_x, ffi::ResultBuffer<ffi::F32> grad_scale,
                    ffi::ResultBuffer<ffi::F32> grad_bias, float epsilon, int64_t activation) {
  const int64_t channels = scale.element_count();
  const int64_t rows = x.element_count() / channels;
  const float* input = x.typed_data();
  const float* grad = grad_y.typed_data();
  std::vector<float> inverse(channels);
  for (int64_t c = 0; c < channels; ++c)
    inverse[c] = 1.0f / std::sqrt(variance.typed_data()[c] + epsilon);
  std::vector<double> totals;
  ChunkedSums(pool, rows, channels, 2, &totals, [&](float* sums, int64_t first, int64_t last) {
    WithActivation<SumGradient>(activation, input, grad, mean.typed_data(), inverse.data(),
                                scale.typed_data(), bias.typed_data(), sums, sums + channels,
                                first, last, channels);
  });
  float* bias_grad = grad_bias->typed_data();
  float* scale_grad = grad_scale->typed_data();
  for (int64_t c = 0; c < channels; ++c) {
    bias_grad[c] = static_cast<float>(totals[c]);
    scale_grad[c] = static_cast<float>(totals[channels + c]);
  }
  float* output = grad_x->typed_data();
  ChunkedRows(pool, rows, [&](int64_t first, int64_t last) {
    WithActivation<InputGradient>(activation, input, grad, mean.typed_data(), inverse.data(),
                                  scale.typed_data(), bias.typed_data(), bias_grad, scale_grad,
                                  grad_mean.typed_data(), grad_variance.typed_data(),
                                  static_cast<float>(rows), output, first, last, channels);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(MnsearchBatchNormForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("epsilon")
                                  .Attr<int64_t>("activation"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(MnsearchBatchNormBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("epsilon")
                                  .Attr<int64_t>("activation"));
