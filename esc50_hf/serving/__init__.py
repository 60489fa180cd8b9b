"""The Gradio web demo and REST API, its hardening for public serving, the Space writer and the static browser page."""
