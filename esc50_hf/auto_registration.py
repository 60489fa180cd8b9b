"""Registers the model with transformers' Auto classes on `import esc50_hf`, without importing transformers then.

Loading transformers' model machinery imports torch (1-2 s), which `esc50-hf --help` must not wait
for. So `import esc50_hf` registers at once when that machinery is already loaded, and otherwise
installs a small import hook that registers as soon as it is: after the first import of
transformers' configuration, feature-extraction or modeling code has finished (never in the middle
of one, where the classes it needs may be half-built). Either way the Auto classes load a saved folder with the
package's classes after `import esc50_hf`, without `trust_remote_code` (`esc50_hf.audio_pipeline` for the
pipeline, whose class a folder names in `custom_pipelines`), and saved folders carry the code
(`register_for_auto_class`).
"""

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder

# Loaded only together with torch: once one is there, registering costs little more.
_TRIGGERS = ("transformers.configuration_utils", "transformers.feature_extraction_utils", "transformers.modeling_utils")
_WATCHED = ("transformers", "esc50_hf")
_state = {"registered": False, "registering": False}


def register_auto_classes() -> None:
    """Registers the config, feature extractor and model with the Auto classes (once; idempotent)."""
    if _state["registered"] or _state["registering"]:
        return
    _state["registering"] = True
    try:
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

        from .model.configuration_esc50_cnn import Esc50CnnConfig
        from .model.feature_extraction_esc50 import Esc50FeatureExtractor
        from .model.modeling_esc50_cnn import Esc50CnnForAudioClassification

        AutoConfig.register(Esc50CnnConfig.model_type, Esc50CnnConfig, exist_ok=True)
        AutoFeatureExtractor.register(Esc50CnnConfig, Esc50FeatureExtractor, exist_ok=True)
        AutoModelForAudioClassification.register(Esc50CnnConfig, Esc50CnnForAudioClassification, exist_ok=True)
        # Saved folders carry the code and an `auto_map`, so they also load with trust_remote_code=True.
        Esc50CnnConfig.register_for_auto_class()
        Esc50FeatureExtractor.register_for_auto_class()
        Esc50CnnForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
        _state["registered"] = True
    finally:
        _state["registering"] = False
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def _importing(excluding: str = "") -> bool:
    """Whether a module of transformers or of this package is still being executed (its import not finished)."""
    return any(
        name != excluding
        and name.partition(".")[0] in _WATCHED
        and getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
    )


def register_when_ready(just_imported: str = "") -> None:
    loaded = any(name in sys.modules for name in _TRIGGERS)
    if not _state["registered"] and loaded and not _importing(excluding=just_imported):
        register_auto_classes()


class _RegisterAfterImport(MetaPathFinder):
    """Finds transformers' and this package's modules as usual, and checks after each import whether to register."""

    def find_spec(self, name: str, path=None, target=None) -> ModuleSpec | None:
        if name.partition(".")[0] not in _WATCHED:
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # left to the other finders
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            execute(module)
            register_when_ready(just_imported=name)

        spec.loader.exec_module = exec_module  # this module's loader only; its other methods are untouched
        return spec


_FINDER = _RegisterAfterImport()


def install() -> None:
    """Registers now if transformers' model machinery is loaded, otherwise as soon as it is."""
    register_when_ready(just_imported="esc50_hf")
    if not _state["registered"] and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
