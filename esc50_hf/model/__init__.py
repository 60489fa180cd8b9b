"""The model itself: exactly the files that ship inside every saved model folder.

`save_pretrained` copies each of these modules next to the weights (`auto_map` and `custom_pipelines` name them by
file), so that `trust_remote_code=True` loads a folder in a process without this package. They import only each other
(relatively), the standard library and installed packages; `tests/test_shipped_model.py` checks that every module here
equals its copy in `models/esc50-mel-cnn` and that the folder has no other code. This `__init__.py` is the one file
that stays behind.
"""
