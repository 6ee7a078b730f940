"""The network layer (JAX/Flax NNX): convolution primitives and the native CPU kernels
(`csrc/`), the `MobileNet` module, Keras interop, conversions to ONNX/StableHLO, latency.
"""
