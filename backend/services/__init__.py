"""Use cases: verb_noun functions that load rows, call campaigns/, write rows and flush."""
