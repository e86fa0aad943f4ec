"""Writers of other harnesses' layouts and formats: the VeloraHarness tree, OpenHands
histories from ATIF, the old-output migration. Readers live in :mod:`trialbook.sources`.
"""
