"""One pure decoder per on-disk format: bytes in, protos/arrays out."""
