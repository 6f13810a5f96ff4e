"""Instruction text as every node compares and records it."""


def normalize_instruction(text: str) -> str:
    """Whitespace and line breaks collapsed to single spaces, ends stripped; "" means no instruction."""
    return " ".join(str(text).split())
