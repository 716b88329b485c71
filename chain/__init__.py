"""Web3 client, contract bindings, EIP-712 types and compiled artifacts."""
