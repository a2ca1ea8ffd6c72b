"""Pure rules of envyard: no I/O, no framework imports."""
