"""Trigger functions: one blueprint module per trigger family."""
