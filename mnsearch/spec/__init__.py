"""The spec layer: blocks and their strings, `ArchSpec`, the layer plan, the families'
presets and spec files. No JAX: everything above reads architectures from here.
"""
