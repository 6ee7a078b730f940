"""Training: the recipe (`TrainConfig`), data preparation and augmentation, the loop,
evaluation, weight EMA and loading, checkpoints, throughput benchmarks.
"""
