"""Writers of other harnesses' layouts and formats: the VeloraHarness tree, OpenHands
histories from ATIF, the old-output migration, Parquet tables (:mod:`.parquet`) and Hugging
Face datasets (:mod:`.hf`). Readers live in :mod:`trialbook.sources`.
"""
