"""What a command does from start to end: a block run with its post-run steps (summary,
analysis, SFT data, archive), ``show``, the demos. The layer above the derived outputs,
importing each of them directly; the CLI is the only layer above it.
"""
