# bench/plot.gp - the comparison at a glance: one panel per headline figure,
# a bar per proxy (its median; the whiskers are min and max over the
# repetitions; the number is the median), sluice in blue. A dashed red line is the same traffic sent
# straight to the echo without TLS: the load side's own limit.
#
# gnuplot -e 'datadir="DIR"; outfile="FILE.svg"' bench/plot.gp
# DIR holds panels.gp (titles, limits) and panelN.dat ("proxy" median min max
# colour), both written by bench/report.py.

load datadir."/panels.gp"

set terminal svg size 1600,820 dynamic font "sans,12" background rgb "white"
set output outfile
set linetype 1 lc rgb "#1f6fb4"
set linetype 2 lc rgb "#a8a8a8"
set style fill solid 0.85 border rgb "#444444"
set boxwidth 0.65
set grid ytics lc rgb "#dddddd"
set border 3
set xtics nomirror scale 0 font ",11"
set ytics nomirror
set key off
set format y "%.1s%c"

set multiplot layout 2,4 title chart_title font ",15"
do for [i=1:npanels] {
	file = sprintf("%s/panel%d.dat", datadir, i)
	set title ptitle[i] font ",12"
	unset arrow
	unset label
	# stats honours the current ranges: the previous panel's must go.
	set autoscale xy
	stats file using 4 nooutput
	top = STATS_max > plimit[i] ? STATS_max : plimit[i]
	set xrange [-0.6:STATS_records - 0.4]
	set yrange [0:(top > 0 ? top * 1.2 : 1)]
	if (plimit[i] > 0) {
		set arrow 1 from graph 0, first plimit[i] to graph 1, first plimit[i] nohead dt 2 lw 2 lc rgb "#d62728"
		set label 1 "no TLS, no proxy" at graph 0.02, first plimit[i] left offset 0,0.7 front tc rgb "#d62728" font ",10"
	}
	plot file using 0:2:5:xtic(1) with boxes lc variable, \
	     '' using 0:2:3:4 with yerrorbars lc rgb "#222222" pt -1 lw 1.2, \
	     '' using 0:4:($2 > 0 ? gprintf("%.1s%c", $2) : "") with labels offset 0,0.8 font ",10"
}
unset multiplot
