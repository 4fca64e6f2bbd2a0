"""CLI commands (``syrip-gen train|evaluate|predict``); each imports torch only inside ``run``."""
