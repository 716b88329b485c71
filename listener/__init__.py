"""Chain listener: confirmed contract events become workflow signals."""
