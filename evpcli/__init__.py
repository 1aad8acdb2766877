"""evp: audio-driven emotional video portraits (EVP, CVPR 2021) as a command-line tool."""

__version__ = "0.1.0"
