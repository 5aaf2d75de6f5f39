"""Thin adapters that fit the kernels into frameworks; they translate calls and hold no math."""
