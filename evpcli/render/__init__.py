"""Inference from speech: landmark previews now; the render pipeline and renderers later."""
