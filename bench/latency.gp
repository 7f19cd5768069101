# bench/latency.gp - latency percentiles per scenario, one cluster of bars each, log scale.
#
#   gnuplot -e "data='FILE'; out='PNG'; heading='TITLE'" bench/latency.gp
#
# FILE has one line per scenario: "name" p50 p90 p99 p99.9, in milliseconds (bench/run writes it).
set terminal pngcairo size 1280,640 font "sans,10"
set output out
set title heading
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.01:*]
set format y "%g"
set ylabel "latency, ms (log scale)"
set grid ytics mytics
set xtics rotate by -25 scale 0 nomirror
set key top left
set bmargin 8
plot data using 2:xtic(1) title "p50" lc rgb "#4c72b0", \
     '' using 3 title "p90" lc rgb "#55a868", \
     '' using 4 title "p99" lc rgb "#dd8452", \
     '' using 5 title "p99.9" lc rgb "#c44e52"
