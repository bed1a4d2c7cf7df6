# Figures for docs/observer.md from the CSVs written by bench/sim_observer.
# Usage: gnuplot -e "dir='build/bench-results/observer'; out='docs/figures'" bench/plots/observer.gp
# (bench/plots/plot_observer.sh runs the simulation and this script.)
if (!exists("dir")) dir = 'build/bench-results/observer'
if (!exists("out")) out = 'docs/figures'

set datafile separator ','
set terminal svg size 960,820 dynamic font 'sans,12' background rgb 'white'
set key top left opaque box
set grid lc rgb '#dddddd'
set tmargin 1
set lmargin 10
set rmargin 10


# ---------------------------------------------------------------- step
set output out.'/observer_step.svg'
set multiplot layout 3,1 title "Load step 5/s → 20/s at 300 s → 5/s at 900 s (mean service 1 s, 4 slots per worker, seed 1)"
set xrange [200:1200]
set format x ''
set ylabel 'jobs/s, slots'
plot dir.'/step.csv' using 1:2 every ::1 with lines lw 2 lc rgb '#888888' title 'true arrival rate', \
     '' using 1:3 every ::1 with lines lw 1.5 lc rgb '#1f77b4' title 'measured rate (short window)', \
     '' using 1:8 every ::1 with steps lw 2 lc rgb '#d62728' title 'slots provisioned'
set ylabel 'workers'
set yrange [0:8]
set y2label 'busy slots / slots'
set y2range [0:1.6]
set y2tics 0.25
set ytics nomirror
plot dir.'/step.csv' using 1:($9/$8) every ::1 with lines lw 0.8 lc rgb '#a6d8a6' axes x1y2 title 'busy fraction (instant)', \
     '' using 1:6 every ::1 with steps lw 2.5 lc rgb '#d62728' axes x1y1 title 'workers'
unset y2label
set y2range [*:*]
set autoscale y2
set ytics mirror
unset y2tics
set format x '%g'
set xlabel 'simulated time (s)'
set yrange [0:*]
set ylabel 'jobs'
set y2label 'seconds'
set y2tics
set ytics nomirror
plot dir.'/step.csv' using 1:10 every ::1 with lines lw 1.5 lc rgb '#9467bd' axes x1y1 title 'queue length', \
     '' using 1:12 every ::1 with lines lw 1.5 lc rgb '#ff7f0e' axes x1y2 title 'mean response (short window)', \
     '' using 1:14 every ::1 with lines lw 1 lc rgb '#8c564b' axes x1y2 title 'p95 wait (short window)'
unset multiplot
unset y2label
unset y2tics
set ytics mirror
unset xlabel
set yrange [*:*]

# ---------------------------------------------------------------- sine
set output out.'/observer_sine.svg'
set multiplot layout 3,1 title "Sinusoidal load 10 + 6 sin(2πt / 600 s) (mean service 1 s, 4 slots per worker, seed 1)"
set xrange [0:3600]
set format x ''
set ylabel 'jobs/s, slots'
plot dir.'/sine.csv' using 1:2 every ::1 with lines lw 2 lc rgb '#888888' title 'true arrival rate', \
     '' using 1:3 every ::1 with lines lw 1 lc rgb '#1f77b4' title 'measured rate (short window)', \
     '' using 1:8 every ::1 with steps lw 2 lc rgb '#d62728' title 'slots provisioned'
set ylabel 'workers'
set yrange [0:8]
set y2label 'busy slots / slots'
set y2range [0:1.6]
set y2tics 0.25
set ytics nomirror
plot dir.'/sine.csv' using 1:($9/$8) every ::1 with lines lw 0.8 lc rgb '#a6d8a6' axes x1y2 title 'busy fraction (instant)', \
     '' using 1:6 every ::1 with steps lw 2.5 lc rgb '#d62728' axes x1y1 title 'workers'
unset y2label
set y2range [*:*]
set autoscale y2
set ytics mirror
unset y2tics
set format x '%g'
set xlabel 'simulated time (s)'
set yrange [0:*]
set ylabel 'jobs'
set y2label 'seconds'
set y2tics
set ytics nomirror
plot dir.'/sine.csv' using 1:10 every ::1 with lines lw 1.5 lc rgb '#9467bd' axes x1y1 title 'queue length', \
     '' using 1:12 every ::1 with lines lw 1.5 lc rgb '#ff7f0e' axes x1y2 title 'mean response (short window)', \
     '' using 1:14 every ::1 with lines lw 1 lc rgb '#8c564b' axes x1y2 title 'p95 wait (short window)'
unset multiplot
unset y2label
unset y2tics
set ytics mirror
unset xlabel
set yrange [*:*]

# ---------------------------------------------------------------- model vs simulation
set output out.'/observer_prediction.svg'
set terminal svg size 720,420 dynamic font 'sans,12' background rgb 'white'
set tmargin 3
set title "Mean queue wait, 8 slots, mean service 1 s: Erlang C vs simulation (5 seeds × 50 000 s)"
set xrange [0.45:0.85]
set yrange [0:*]
set xtics (0.5, 0.7, 0.8)
set format x '%.1f'
set xlabel 'utilisation ρ'
set ylabel 'mean wait Wq (s)'
set key top left
plot dir.'/prediction.csv' using 1:4 every ::1 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#d62728' title 'Erlang C prediction', \
     '' using 1:5:6 every ::1 with yerrorbars pt 5 ps 1.2 lc rgb '#1f77b4' title 'simulated (± 1 sd across seeds)', \
     '' using 1:8 every ::1 with points pt 9 ps 1.4 lc rgb '#2ca02c' title 'measured by the observer (short windows)'
