"""Convolutional autoencoders on TensorFlow / Keras 3, driven by YAML configs.

Importing this package does not import TensorFlow; the modules that need it import it lazily.
"""

__version__ = "0.1.0"
