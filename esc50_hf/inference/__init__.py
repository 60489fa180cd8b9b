"""Classifying new audio: `SoundClassifier` (windows over recordings of any length), the logits backends
(torch, ONNX, int8), ONNX export, and batch prediction into one file."""
