"""The `hwnas` command line. Thin: every command calls into the library."""
