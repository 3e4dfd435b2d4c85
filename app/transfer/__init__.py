"""Transfer: the reference panel, the measuring step a worker runs, and the report built from it."""
