"""The Gradio web demo and REST API, its hardening for public serving, and the Space writer."""
