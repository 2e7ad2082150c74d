"""``python bench.py [flags]`` == ``samplerbench [flags]``: see samplerbench/runs/benchmark.py for what a run does."""

import sys

from samplerbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
