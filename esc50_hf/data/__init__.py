"""Where training and evaluation audio comes from: ESC-50 as a `datasets.Dataset`, its parquet copy, the user's own
labelled audio in the same shape (`labelled.py`), waveform augmentation, and the log-mel features computed once and
cached (or carried in a feature file)."""
