% Evidence with false (two-argument form).
0.6::burglary.
0.2::earthquake.
0.9::alarm :- burglary.
0.8::alarm :- earthquake.
evidence(alarm, false).
query(burglary).
query(earthquake).
