"""The `margin` command line: one module per command; main.py wires them."""
