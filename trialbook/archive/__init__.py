"""Run archives (``artifacts/archives/run_NNN/``), the run history ``artifacts/index.yaml``
and ``clean``.

The post-run step that archives each run is :mod:`trialbook.app.archive_step`.
"""

from trialbook.archive.archive import ArchiveResult, RunInfo, create_archive, make_run_id
from trialbook.archive.clean import clean_block
from trialbook.archive.index import ArchiveListing, list_archives, read_index

__all__ = [
    "ArchiveListing",
    "ArchiveResult",
    "RunInfo",
    "clean_block",
    "create_archive",
    "list_archives",
    "make_run_id",
    "read_index",
]
