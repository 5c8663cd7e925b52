"""Build shim: builds ``pyharmonies._native`` by driving CMake.

Metadata, dependencies and extras live in pyproject.toml; the native build is
described once, in CMakeLists.txt. Modelled on pybind11's ``cmake_example``.

Environment knobs:
  CMAKE_ARGS                  extra ``-D...`` arguments for the configure step
  CMAKE_BUILD_PARALLEL_LEVEL  build jobs (default: all cores)
  CMAKE_GENERATOR             generator (default: Ninja when the ``ninja`` package is importable)
  HM_DEBUG=1                  Debug instead of Release
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CMakeExtension(Extension):
    """An extension whose build is delegated to CMake (no sources for setuptools)."""

    def __init__(self, name: str, sourcedir: str = "") -> None:
        super().__init__(name, sources=[])
        self.sourcedir = os.fspath(Path(sourcedir).resolve())


def _cmake_command() -> str:
    # Prefer the `cmake` wheel from the build requirements: with
    # --no-build-isolation in a non-activated venv, PATH may point elsewhere.
    try:
        import cmake  # type: ignore[import-not-found]

        return os.path.join(cmake.CMAKE_BIN_DIR, "cmake")
    except ImportError:
        found = shutil.which("cmake")
        if found is None:
            raise RuntimeError("CMake is required to build pyharmonies._native") from None
        return found


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            return super().build_extension(ext)

        import pybind11

        # Where setuptools expects the module (the source tree for --inplace/editable).
        ext_fullpath = Path.cwd() / self.get_ext_fullpath(ext.name)
        extdir = ext_fullpath.parent.resolve()

        debug = int(os.environ.get("HM_DEBUG", 0)) if self.debug is None else self.debug
        cfg = "Debug" if debug else "Release"

        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DPYTHON_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            "-DHM_BUILD_PYTHON=ON",
            "-DHM_BUILD_TESTS=OFF",
            "-DHM_BUILD_EXAMPLES=OFF",
        ]
        if "CMAKE_ARGS" in os.environ:
            cmake_args += [item for item in os.environ["CMAKE_ARGS"].split(" ") if item]

        if not os.environ.get("CMAKE_GENERATOR"):
            try:
                import ninja  # type: ignore[import-not-found]

                ninja_executable_path = Path(ninja.BIN_DIR) / "ninja"
                cmake_args += [
                    "-GNinja",
                    f"-DCMAKE_MAKE_PROGRAM:FILEPATH={ninja_executable_path}",
                ]
            except ImportError:
                pass

        build_args = ["--config", cfg]
        if "CMAKE_BUILD_PARALLEL_LEVEL" not in os.environ:
            jobs = self.parallel if getattr(self, "parallel", None) else os.cpu_count() or 1
            build_args += [f"-j{jobs}"]

        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)

        cmake = _cmake_command()
        subprocess.run([cmake, ext.sourcedir, *cmake_args], cwd=build_temp, check=True)
        subprocess.run(
            [cmake, "--build", ".", "--target", "_native", *build_args],
            cwd=build_temp,
            check=True,
        )


setup(
    ext_modules=[CMakeExtension("pyharmonies._native")],
    cmdclass={"build_ext": CMakeBuild},
)
