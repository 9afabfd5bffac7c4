"""Backends: `plain` (numpy) and `encrypted` (SEAL through TenSEAL), with identical op signatures."""
