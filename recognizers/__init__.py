"""Recognizers and FEM backbones: torchvision image models trained as frame classifiers."""
