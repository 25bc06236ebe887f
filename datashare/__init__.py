"""datashare: share clinical data safely and lawfully.

A versioned DuckDB catalog, de-identification policies compiled to SQL,
Ed25519-signed exports and an append-only, tamper-evident audit trail.
"""

__version__ = "0.1.0"
