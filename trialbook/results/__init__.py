"""A job's results files: summary.json and summary.md built from its trials (the numbers are :mod:`trialbook.model.aggregate`'s)."""
