"""arq worker settings and job functions for the distributed mode.

Not in this release: standalone builds run in the API process through
app.services.queue.InProcessQueue, which calls the same service, app.services.builds.run_build.
"""
