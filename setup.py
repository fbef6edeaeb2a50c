# setup.py — builds the memq Python package's native parts through CMake:
# the pybind11 extension memq._memq, and the memqd and memq binaries (memq/_bin/)
# that memq.testing starts and that the `memqd` and `memq` commands run.
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        # A fixed build folder inside the checkout keeps rebuilds incremental.
        build_dir = Path(os.environ.get("MEMQ_PYTHON_BUILD_DIR", ROOT / "build" / "python"))
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DMEMQ_BUILD_TESTS=OFF",
            "-DMEMQ_BUILD_BENCH=OFF",
            "-DMEMQ_BUILD_PYTHON=ON",
            f"-DPython_EXECUTABLE={sys.executable}",
        ]
        if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", str(os.cpu_count() or 2),
                        "--target", "_memq", "memqd", "memq"], check=True)

        extension_path = Path(self.get_ext_fullpath(ext.name))
        extension_path.parent.mkdir(parents=True, exist_ok=True)
        built = next((build_dir / "lib").glob("_memq*.so"))
        shutil.copy2(built, extension_path)
        binary_dir = extension_path.parent / "_bin"
        binary_dir.mkdir(exist_ok=True)
        for program in ("memqd", "memq"):
            shutil.copy2(build_dir / "bin" / program, binary_dir / program)


setup(ext_modules=[CMakeExtension("memq._memq")], cmdclass={"build_ext": CMakeBuild})
