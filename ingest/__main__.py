"""``python -m ingest CORPUS_DIR --index INDEX_DIR``: same as ``rag ingest``."""

import sys

from rag_cli.ingest import main

if __name__ == "__main__":
    sys.exit(main())
