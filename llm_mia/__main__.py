"""``python -m llm_mia`` (and ``accelerate launch -m llm_mia``) runs the CLI."""

from llm_mia.cli import console_main

console_main()
