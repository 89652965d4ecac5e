"""Shared test vectors (``vectors.txt``) and the script that generates them."""
