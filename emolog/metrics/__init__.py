"""Scores of predictions against labels: classification metrics, calibration and the bootstrap
intervals every table uses (``classification``)."""
