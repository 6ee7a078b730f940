"""Flax NNX modules that build any `ArchSpec`: one MobileNet class for V1, V2, V3 and mixes.

Layer attributes follow the papers' roles (expand, depthwise, se, project). BatchNorm momentum
and epsilon come from the spec (Flax/Keras convention: momentum = 1 - PyTorch momentum). A new
model is in training mode; `eval_view` gives the inference view (running statistics, no
dropout) without touching the training one. `dtype` is the compute dtype: parameters and BN
statistics stay float32 whatever it is (bfloat16 casts inputs and weights at each layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mnsearch.errors import MnsearchError
from mnsearch.nn.ops import (
    DEPTHWISE_IMPLEMENTATIONS,
    activate,
    batch_norm_activation,
    conv,
    depthwise_conv,
    hard_sigmoid,
    model_kernels,
)
from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.blocks import BlockSpec
from mnsearch.spec.plan import PlannedBlock, layer_plan


class HostInit:
    """Initial weights drawn with numpy on the host, from one seed per model.

    JAX's initializers compile one small XLA program per distinct weight shape (measured: 53
    programs, 7-8 s for V1 α=0.25 on 2 cores, paid again by every sweep trial), while numpy
    draws the same distributions in milliseconds. Convs: He normal on fan-out (as torchvision
    and TF-slim initialise MobileNets, = variance_scaling(2, fan_out, normal)); dense layers:
    variance_scaling(1, fan_in, uniform) (Flax's default for Linear).
    """

    def __init__(self, rngs: nnx.Rngs):
        # Seeded by the model's params stream: the raw bits of its next key. Under a trace
        # (nnx.eval_shape, a jitted constructor) there are no bits to read: JAX draws instead.
        self.key = rngs.params()
        bits = jax.random.key_data(self.key)
        self.generator = None if isinstance(bits, jax.core.Tracer) else \
            np.random.default_rng(np.asarray(bits))
        self.draws = 0

    def conv(self, shape: tuple[int, ...], fan_out: int) -> jax.Array:
        standard_deviation = np.sqrt(2.0 / fan_out)
        if self.generator is None:
            return jax.random.normal(self._next_key(), shape) * standard_deviation
        # float32 on the host: a float64 array would compile a conversion per shape on device
        return jnp.asarray(self.generator.normal(0.0, standard_deviation, shape)
                           .astype(np.float32))

    def dense(self, key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32
              ) -> jax.Array:
        """A Flax initializer (the key is unused: the host generator decides)."""
        limit = np.sqrt(3.0 / shape[0])
        if self.generator is None:
            return jax.random.uniform(self._next_key(), shape, dtype, -limit, limit)
        return jnp.asarray(self.generator.uniform(-limit, limit, shape).astype(dtype))

    def _next_key(self) -> jax.Array:
        self.draws += 1
        return jax.random.fold_in(self.key, self.draws)


class ConvBN(nnx.Module):
    """K x K convolution (dense or depthwise), BatchNorm, activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 activation: str, spec: ArchSpec, *, depthwise: bool = False,
                 dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs, init: HostInit):
        shape = (kernel_size, kernel_size, in_channels) if depthwise else \
            (kernel_size, kernel_size, in_channels, out_channels)
        self.kernel = nnx.Param(init.conv(shape, kernel_size * kernel_size * out_channels))
        self.norm = nnx.BatchNorm(out_channels, momentum=spec.bn_momentum,
                                  epsilon=spec.bn_epsilon, dtype=dtype, rngs=rngs)
        self.stride, self.activation, self.padding = stride, activation, spec.padding
        self.depthwise, self.dtype = depthwise, dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        apply = depthwise_conv if self.depthwise else conv
        x = apply(x.astype(self.dtype), self.kernel[...].astype(self.dtype), self.stride,
                  self.padding)
        norm = self.norm
        if norm.use_running_average:
            return activate(norm(x), self.activation)
        # Training: nnx.BatchNorm's statistics and update, with a faster backward pass.
        x, mean, variance = batch_norm_activation(x, norm.scale[...], norm.bias[...],
                                                  norm.epsilon, self.activation)
        norm.mean[...] = jax.lax.stop_gradient(
            norm.momentum * norm.mean[...] + (1 - norm.momentum) * mean)
        norm.var[...] = jax.lax.stop_gradient(
            norm.momentum * norm.var[...] + (1 - norm.momentum) * variance)
        return x


class SqueezeExcite(nnx.Module):
    """Squeeze-excite (V3 section 5.3): pool, FC + ReLU, FC + gate, rescale channels."""

    def __init__(self, channels: int, squeeze_channels: int, gate: str, *,
                 dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs, init: HostInit):
        self.reduce = nnx.Linear(channels, squeeze_channels, kernel_init=init.dense,
                                 dtype=dtype, rngs=rngs)
        self.expand = nnx.Linear(squeeze_channels, channels, kernel_init=init.dense,
                                 dtype=dtype, rngs=rngs)
        self.gate = gate

    def __call__(self, x: jax.Array) -> jax.Array:
        pooled = jnp.mean(x, axis=(1, 2))
        scale = self.expand(jax.nn.relu(self.reduce(pooled)))
        scale = hard_sigmoid(scale) if self.gate == "hard_sigmoid" else jax.nn.sigmoid(scale)
        return x * scale[:, None, None, :]


class Block(nnx.Module):
    """A planned `cn`, `ds` or `ir` block: [expand] depthwise [SE] project [+ shortcut].

    `cn` blocks are a single ConvBN; `ds` blocks (V1) are an `ir` block without expansion whose
    projection has the activation (V1 uses no linear bottleneck).
    """

    def __init__(self, planned: PlannedBlock, spec: ArchSpec, *,
                 dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs, init: HostInit):
        block: BlockSpec = planned.block
        self.residual = planned.residual
        expanded = planned.expanded_channels
        is_cn = block.block_type == "cn"
        needs_expand = block.block_type == "ir" and block.expansion != 1.0
        self.expand = ConvBN(planned.in_channels, expanded, 1, 1, block.activation, spec,
                             dtype=dtype, rngs=rngs, init=init) if needs_expand else None
        self.depthwise = None if is_cn else ConvBN(
            expanded, expanded, block.kernel_size, planned.stride, block.activation, spec,
            depthwise=True, dtype=dtype, rngs=rngs, init=init)
        self.se = SqueezeExcite(expanded, planned.se_channels, spec.se_gate, dtype=dtype,
                                rngs=rngs, init=init) if planned.se_channels else None
        if is_cn:
            self.project = ConvBN(planned.in_channels, block.out_channels, block.kernel_size,
                                  planned.stride, block.activation, spec, dtype=dtype,
                                  rngs=rngs, init=init)
        else:
            activation = block.activation if block.block_type == "ds" else "identity"
            self.project = ConvBN(expanded, block.out_channels, 1, 1, activation, spec,
                                  dtype=dtype, rngs=rngs, init=init)

    def __call__(self, x: jax.Array) -> jax.Array:
        shortcut = x
        if self.expand is not None:
            x = self.expand(x)
        if self.depthwise is not None:
            x = self.depthwise(x)
        if self.se is not None:
            x = self.se(x)
        x = self.project(x)
        return x + shortcut if self.residual else x


class MobileNet(nnx.Module):
    """A MobileNet built from `spec`; call on NHWC float arrays, returns logits.

    `kernels` says which convolution kernels its forward pass traces (`mnsearch.nn.ops`):
    `auto` (native on CPU, `lax` elsewhere, or what MNSEARCH_DEPTHWISE says), `native`,
    `shifted` or `lax`.
    """

    def __init__(self, spec: ArchSpec, *, dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs,
                 kernels: str = "auto"):
        if kernels not in DEPTHWISE_IMPLEMENTATIONS:
            raise MnsearchError(f"kernels '{kernels}' is not one of "
                                f"{', '.join(DEPTHWISE_IMPLEMENTATIONS)}")
        self.spec = spec
        self.kernels = kernels
        stem_stride, _, planned = layer_plan(spec)
        init = HostInit(rngs)
        self.stem = ConvBN(spec.in_channels, spec.stem.out_channels, spec.stem.kernel_size,
                           stem_stride, spec.stem.activation, spec, dtype=dtype, rngs=rngs,
                           init=init)
        self.blocks = nnx.List([Block(block, spec, dtype=dtype, rngs=rngs, init=init)
                                for block in planned])
        features = spec.blocks[-1].out_channels
        self.head = nnx.Linear(features, spec.head.channels, kernel_init=init.dense,
                               dtype=dtype, rngs=rngs) if spec.head.channels else None
        features = spec.head.channels or features
        self.dropout = nnx.Dropout(spec.head.dropout, rngs=rngs)
        self.classifier = nnx.Linear(features, spec.num_classes, kernel_init=init.dense,
                                     dtype=dtype, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        """The last feature map, before global pooling."""
        with model_kernels(self.kernels):
            if self.spec.input_scale != 1.0 or self.spec.input_offset != 0.0:
                x = x * self.spec.input_scale + self.spec.input_offset
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return x

    def __call__(self, x: jax.Array) -> jax.Array:
        with model_kernels(self.kernels):
            x = jnp.mean(self.features(x), axis=(1, 2))
            if self.head is not None:
                x = activate(self.head(x), self.spec.head.activation)
            return self.classifier(self.dropout(x))


def build(spec: ArchSpec, seed: int = 0, dtype: str = "float32",
          kernels: str = "auto") -> MobileNet:
    """A freshly initialised model (training mode) for `spec`, computing in `dtype`.

    The initial weights depend on `seed` only, not on `dtype` (parameters are float32).
    """
    return MobileNet(spec, dtype=jnp.dtype(dtype), kernels=kernels,
                     rngs=nnx.Rngs(params=seed, dropout=seed + 1))


def eval_view(model: MobileNet) -> MobileNet:
    """Inference view sharing `model`'s variables: BN running statistics, no dropout."""
    return nnx.view(model, use_running_average=True, deterministic=True)


def jitted_forward(model: MobileNet) -> Callable[[jax.Array], jax.Array]:
    """The eval-mode forward as one jitted function of the images.

    The model is split once, outside the function: no NNX graph traversal per call, which is
    what latency measurement and conversions want (the weights become constants of the trace).
    """
    graph, state = nnx.split(eval_view(model))
    return jax.jit(lambda images: nnx.merge(graph, state)(images))


def example_images(spec: ArchSpec, batch_size: int, seed: int = 0) -> np.ndarray:
    """Random NHWC inputs on the scale the model sees in training (normalised, unit variance)."""
    shape = (batch_size, spec.resolution, spec.resolution, spec.in_channels)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def count_params(model: nnx.Module) -> int:
    """Trainable parameters (papers' convention); BN statistics are not nnx.Param."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
