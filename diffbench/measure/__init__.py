"""Timing, memory and error measurements."""
