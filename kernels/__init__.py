"""Triton kernels for the classic CNNs' memory-bound and oddly shaped hot paths.

Each op family (fused BatchNorm+ReLU, LRN, grouped/depthwise convolution, squeeze-and-excitation)
keeps ../shared/kernel-contract.md. None is implemented yet: this package exists so the
project's layout is the one its users are told about.
"""
