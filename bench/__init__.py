"""Benchmarks run by ``make bench``; figures and how to read them are in the README."""
