"""Helpers for tests, benchmarks and demos: synthetic studies with real specs and
costs and made-up accuracies.
"""
