"""The search: search-space files, the early-stopping rule, storages, the worker that
trains one trial after another, and the runner that starts workers.
"""
