# Sourced (not run) by scripts/test.sh and the clean-root check: every compiler call of the
# builds that follow goes through ccache (a Debian package, installed by install_deps.sh), cached
# in build/ccache. The Python package's `pip install .` then reuses the objects of the Release
# build before it: same sources, same flags, another build folder (CCACHE_BASEDIR makes the
# paths relative). Launchers the caller already set, and a machine without ccache, are left alone.
if command -v ccache > /dev/null; then
  mlprt_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  export CCACHE_DIR="${CCACHE_DIR:-$mlprt_root/build/ccache}"
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$mlprt_root}"
  # One name for each compiler in every build: scikit-build-core otherwise gives the package's
  # build Python's (x86_64-linux-gnu-g++), and ccache keys a compiler's name apart from c++.
  export CC="${CC:-cc}" CXX="${CXX:-c++}"
  for lang in C CXX CUDA; do
    var="CMAKE_${lang}_COMPILER_LAUNCHER"
    [ -n "${!var:-}" ] || export "$var=ccache"
  done
  unset lang var mlprt_root
else
  echo "mlprt: no ccache on this machine: every build compiles from scratch" >&2
fi
