"""Build step for the C kernels; all metadata lives in setup.cfg.

The kernels are optional at build time: where the compiler fails (none installed, or a broken
one), the install goes on without them and norm_transforms/backends/kernels.py uses the
NumPy/OpenCV fallback, which gives the same results more slowly. A library that cannot be
installed helps nobody; one that is 2-5x slower on one pass still works.

NORM_TRANSFORMS_REQUIRE_C=1 makes a failed compile fail the build instead: release wheels
(cibuildwheel, pyproject.toml) set it, because a wheel without the kernels passes every test
(the fallback gives the same results) and would ship slower without anyone noticing.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

# What a failed compile raises: no compiler (PlatformError on Windows without MSVC, ExecError
# where the command is missing or fails), or a compiler error (CCompilerError, which CompileError
# and LinkError subclass).
BUILD_ERRORS = (CCompilerError, ExecError, PlatformError)

# One line; the costs measured with timeit (224² and 1024² RGB, one thread): see kernels.py.
NOT_BUILT = (
    "WARNING: norm_transforms: the C kernels were not built ({error}); the install continues "
    "without them and uses the NumPy/OpenCV fallback: same results, but the affine pass is about "
    "2-5x slower (up to 8x with a [0, 1] clip) and normalize() 1.5-5x. To get them, install a C "
    "compiler (gcc, clang or MSVC) and reinstall (pip install --force-reinstall --no-cache-dir "
    "--no-deps norm-transforms, or pip install . in a checkout)."
)


class BuildExt(build_ext):
    """build_ext with the project's flags, which leaves the extension out if it cannot be built."""

    _failed = False

    def run(self) -> None:
        # Compiler set-up happens here, before any extension (MSVC missing raises PlatformError).
        try:
            super().run()
        except BUILD_ERRORS as error:
            self._not_built(error)

    def build_extensions(self) -> None:
        # The kernels are plain loops written for the auto-vectorizer, which GCC and Clang run
        # fully only at -O3; MSVC vectorizes at /O2.
        flags = ["/O2"] if self.compiler.compiler_type == "msvc" else ["-O3"]
        for extension in self.extensions:
            extension.extra_compile_args = flags
        super().build_extensions()

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as error:
            self._not_built(error)

    def copy_extensions_to_source(self) -> None:
        # Editable installs copy the built file next to the sources; there is none to copy.
        if not self._failed:
            super().copy_extensions_to_source()

    def get_outputs(self) -> list:
        # The file that was not built is not an output (wheel and editable builds list these).
        return [] if self._failed else super().get_outputs()

    def _not_built(self, error: Exception) -> None:
        if os.environ.get("NORM_TRANSFORMS_REQUIRE_C") == "1":
            raise error
        self._failed = True
        # The error names the compiler's command line in full; its start says enough.
        detail = " ".join(str(error).split())
        detail = f"{type(error).__name__}: {detail[:100]}{'...' if len(detail) > 100 else ''}"
        print(NOT_BUILT.format(error=detail), file=sys.stderr, flush=True)


setup(
    ext_modules=[
        Extension(
            "norm_transforms.backends._kernels",
            ["norm_transforms/backends/_kernels.c", "norm_transforms/backends/_pool.c"],
            depends=["norm_transforms/backends/_pool.h"],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
