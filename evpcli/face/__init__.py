"""Faces: landmark detection and tracking, normalisation and PCA, the 3D landmark model and pose fitting,
guidance maps. Knows nothing of training."""
