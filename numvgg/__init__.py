"""numvgg: VGG16 by hand in NumPy, forward and backward, with Keras' weights and numbers."""
__version__ = "0.1.0"
