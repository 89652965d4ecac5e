#!/usr/bin/env python3
"""Pipeline benchmark (same as ``edge bench``): ``python tools/bench.py --help``."""

from edge.cli.bench import bench

if __name__ == "__main__":
    bench()
