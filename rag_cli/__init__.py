"""The `rag` console command: argument parsing at the edge, nothing else."""
