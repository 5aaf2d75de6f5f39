"""Build step for the C kernels; all metadata lives in setup.cfg."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        # The kernels are plain loops written for the auto-vectorizer, which GCC and Clang run
        # fully only at -O3; MSVC vectorizes at /O2.
        flags = ["/O2"] if self.compiler.compiler_type == "msvc" else ["-O3"]
        for extension in self.extensions:
            extension.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[Extension("norm_transforms.backends._kernels", ["norm_transforms/backends/_kernels.c"])],
    cmdclass={"build_ext": BuildExt},
)
