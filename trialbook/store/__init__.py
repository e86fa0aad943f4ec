"""The artifact store: a block's outputs uploaded to S3 or any fsspec URL, and read back from it.

``artifacts.store`` in config.yaml turns it on (docs/artifact-store.md). One concern per
module: ``fs`` (opening the file system; credentials left to the environment), ``manifest`` (what a unit holds), ``upload`` (one unit, resumable),
``push`` (what of a job is uploaded), ``record`` (the status section), ``mirror`` (a local,
verified copy that the normal readers read). Store URLs, safe keys and where each unit lives
in a store are layout: :mod:`trialbook.layout.store_url`, :mod:`trialbook.layout.store_paths`.
"""

from trialbook.layout.store_url import StoreURL, is_url
from trialbook.store.fs import Store, open_store
from trialbook.store.push import PushReport, push_job, push_trial

__all__ = ["PushReport", "Store", "StoreURL", "is_url", "open_store", "push_job", "push_trial"]
