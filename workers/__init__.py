"""arq worker settings and job functions for the distributed mode (`envyard worker`)."""
