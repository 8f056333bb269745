"""The C extension of reprolab-fasthash; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "reprolab_fasthash._merkle",
    ["src/reprolab_fasthash/_merkle.c"],
    libraries=["crypto"],
    # SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but EVP allocates and
    # fetches per digest, which is the overhead this module exists to avoid; they remain exported
    # -g0: no debug info, which would record the checkout's path (the services image is reproducible)
    extra_compile_args=["-O2", "-g0", "-Wno-deprecated-declarations"],
    optional=True,
)])
