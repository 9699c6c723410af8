"""The compiled part of the package; everything else is configured in pyproject.toml.

A setup.py rather than pyproject's [tool.setuptools.ext-modules], which setuptools still calls
experimental and likely to change. `make install` also runs `setup.py build_ext --inplace`, so a
checkout used with PYTHONPATH=include imports the extension too.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hca_archive.convert._encode_block",
            sources=["include/hca_archive/convert/_encode_block.c"],
            extra_compile_args=["-Wall", "-Wextra", "-O2"],
        )
    ]
)
