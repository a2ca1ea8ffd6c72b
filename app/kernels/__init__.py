"""Notebook-side commands: envyard environments as Jupyter kernels, both ways.

`envyard kernel copy-to-local` recreates a version from its lock file as a local kernel;
`copy-to-dataflow` turns a local kernel into a Saved envyard environment; `list` shows the
local kernels and where they came from; `activate` registers a kernel that runs an
activated version in place. They run on the notebook server and talk to the envyard API
(app/kernels/api.py); installed with `pip install 'envyard[kernel]'`.
"""
