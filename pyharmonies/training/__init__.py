"""Workstation side: training, evaluation and reports (imports torch)."""
