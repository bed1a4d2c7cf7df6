#!/usr/bin/env bash
# Regenerates the observer figures in docs/figures/ and the numbers quoted in
# docs/observer.md: builds bench/sim_observer (release preset), runs it, plots
# with gnuplot (Debian package gnuplot-nox).
# Usage: bench/plots/plot_observer.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v gnuplot >/dev/null || { echo "plot_observer: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
results=build/bench-results/observer
mkdir -p "$results" docs/figures
if [[ ! -x build/release/bench/sim_observer ]]; then
  cmake --preset release -DFAASD_BUILD_TESTS=OFF -DFAASD_BUILD_BENCH=ON >/dev/null
fi
cmake --build build/release --target bench_sim_observer
build/release/bench/sim_observer "$results" | tee "$results/summary.txt"
gnuplot -e "dir='$results'; out='docs/figures'" bench/plots/observer.gp
echo "plot_observer: wrote docs/figures/observer_{step,sine,prediction}.svg"
