"""Placeholder: replaced by the dataset owner."""
Builder = None
