"""Nivoda-compatible diamond supplier simulator for tests, demos and benchmarks."""

from simulator.cli import main
from simulator.runner import Simulator

__all__ = ["Simulator", "main"]
