"""The `mnsearch` command: a thin layer over the library that parses arguments, draws
progress and writes files.
"""
