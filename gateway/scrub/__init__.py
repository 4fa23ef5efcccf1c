"""Screening a call file in bulk: ``layout`` (where the number is on a line), ``screener`` (the decision per
line), ``stream`` (reading and writing the files, the summary). The command is :mod:`gateway.cli.scrub`.
"""

from gateway.scrub.layout import Layout, detect_layout
from gateway.scrub.screener import Screener, planning_engine
from gateway.scrub.stream import AtomicFile, Summary, scrub_stream, summary_text

__all__ = ["AtomicFile", "Layout", "Screener", "Summary", "detect_layout", "planning_engine", "scrub_stream",
           "summary_text"]
