"""TensorRT build side: the EdgevlAttention graph rewrite and the numerics of kernels/ (numpy twins)."""
