"""Evaluation of detectors against reference annotations."""
