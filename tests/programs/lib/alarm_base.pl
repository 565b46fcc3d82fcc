% Consulted by consult.pl and consult_rules.pl.
0.1::burglary.
0.2::earthquake.
0.9::alarm :- burglary.
0.5::alarm :- earthquake.
evidence(alarm, true).
