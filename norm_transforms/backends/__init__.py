"""Kernels, one module per array library; each implements the modes of :mod:`norm_transforms.modes`."""
