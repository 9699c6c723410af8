"""Tests of the sandbox stand-ins, over real HTTP with plain requests."""
