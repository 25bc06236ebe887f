"""datashare: share clinical data safely and lawfully.

A versioned DuckDB catalog, de-identification policies compiled to SQL,
Ed25519-signed exports and an append-only, tamper-evident audit trail.
"""

import importlib.util
import sys

__version__ = "0.1.0"

# DuckDB's Python client tries `import pandas` for every bound parameter it converts; where pandas is not
# installed each try searches the whole import path again (10,000 column records took 18 s of searching).
# Marking the absent module as absent makes each try fail at once; an installed pandas is left alone.
if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
    sys.modules["pandas"] = None  # type: ignore[assignment]
