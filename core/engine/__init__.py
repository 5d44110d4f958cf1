"""What the recipes share (may import torch; never gradio): process group, model and tokenizer
loading, failure records and run_recipe(), data encoding, logging, checkpoint state, speed features,
sharding, probes, test faults, inference, the GGUF steps of an export and the chat worker server.

The entry points that torchrun or python start by module name stay in core/recipes/ (train,
evaluate, merge); the chat worker (`python -m core.engine.chat_worker`) is a long-running server
started by core/chat.py, not a recipe.
"""
