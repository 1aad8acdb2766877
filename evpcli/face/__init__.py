"""Faces: landmark detection and tracking, temporal filters, normalisation and PCA, the 3D landmark model and pose
fitting, a face's own expression, guidance maps. Knows nothing of training."""
