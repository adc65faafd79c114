"""Run folders: the one path resolver, run ids, and atomic file writes."""
