"""Datasets as numpy arrays (no JAX): Fashion-MNIST, CIFAR-10, image folders; splits and
stratified subsets.
"""
