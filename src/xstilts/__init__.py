"""xstilts: English intermediate-task training and zero-shot cross-lingual evaluation."""

__version__ = "0.1.0"
