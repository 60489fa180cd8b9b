"""Where training and evaluation audio comes from: ESC-50 as a `datasets.Dataset`, its parquet copy, waveform
augmentation, and the log-mel features computed once and cached (or carried in a feature file)."""
