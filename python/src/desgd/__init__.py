"""desgd from Python: the trace reader, the live server's bindings and a Flower
federation.

The submodules are independent on purpose: `desgd.trace` needs only numpy and
zstandard (and runs as a lone file), `desgd.live` and `desgd.signing` add
ctypes and cryptography, and only `desgd.models`, `desgd.data`,
`desgd.torch_client` and `desgd.flower` need torch (and flwr). Nothing is
imported here, so that `import desgd.trace` stays as light as the reader
itself.
"""

__version__ = "0.15.0"
